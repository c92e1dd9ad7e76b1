"""The import graph of a Python package, read from its source with ``ast`` (nothing is imported).

What counts as an import of module ``m``: every ``import``/``from … import`` statement anywhere in
its file (inside functions and ``if TYPE_CHECKING:`` blocks too), relative imports resolved
against ``m``'s package, and ``from pkg import name`` counted as importing ``pkg.name`` when that
is a module (else ``pkg`` itself). Only modules of the package count; an import of ``a.b.c`` is an
edge to ``a.b.c`` alone, not to the packages ``a`` and ``a.b`` that Python initialises on the way.

Units: the top-level parts of the package (each subpackage, each top-level module, and the
package's own ``__init__``). The units form *layers* when their graph, with at most one pair of
units that import each other counted as one layer, has no cycle.

``python tests/unit/import_graph.py [src/trentd]`` prints the cycles and the layer order.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Import:
    """One import statement of ``source`` that reaches module ``target`` (path: ``trentd/x/y.py``)."""

    source: str
    target: str
    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


@dataclass
class Graph:
    """Modules of one package and the imports between them (self-imports left out)."""

    package: str
    modules: dict[str, Path]
    imports: list[Import] = field(default_factory=list)

    def edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            out[imp.source].add(imp.target)
        return out

    def evidence(self, source: str, target: str) -> list[Import]:
        return [i for i in self.imports if i.source == source and i.target == target]


# --- reading the source ----------------------------------------------------------------------------

def find_modules(package_dir: Path) -> dict[str, Path]:
    """Every module under ``package_dir`` by dotted name (``pkg``, ``pkg.sub``, ``pkg.sub.mod``)."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def base_of(module: str, path: Path, level: int) -> str:
    """The package a relative import of ``level`` dots in ``module`` starts from."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if level - 1 >= len(parts):
        raise ValueError(f"{path}: relative import beyond the top-level package")
    return ".".join(parts[: len(parts) - (level - 1)])


def named_targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Dotted names an import statement may reach: modules, or module.attribute."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    origin = node.module or ""
    if node.level:
        base = base_of(module, path, node.level)
        origin = f"{base}.{origin}" if origin else base
    return [f"{origin}.{alias.name}" for alias in node.names]


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lands in: the longest prefix that is a module of the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """The imports of one module; their ``path`` is the file's, from the package's parent folder."""
    source = path.read_text()
    shown = path.relative_to(modules[package].parent.parent)
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        targets = {resolve(name, modules) for name in named_targets(module, path, node)
                   if name == package or name.startswith(package + ".")}
        text = " ".join((ast.get_source_segment(source, node) or "").split())
        found.extend(Import(module, target, shown, node.lineno, text)
                     for target in sorted(t for t in targets if t is not None and t != module))
    return found


def build_graph(package_dir: Path) -> Graph:
    modules = find_modules(package_dir)
    graph = Graph(package_dir.name, modules)
    for module, path in modules.items():
        graph.imports.extend(imports_of(module, path, modules, graph.package))
    return graph


# --- cycles ------------------------------------------------------------------------------------------

def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of nodes that reach each other (components of more than one node)."""
    return sorted(c for c in strongly_connected(edges) if len(c) > 1)


def shortest_cycle(edges: dict[str, set[str]], group: list[str]) -> list[str]:
    """A shortest cycle through the first node of ``group`` (breadth first, inside the group):
    ``[a, b, …, a]``."""
    start, members = group[0], set(group)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(edges.get(node, ())):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
                if succ in members and succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise ValueError(f"no cycle through {start}")


# --- units and layers ------------------------------------------------------------------------------

def unit_of(module: str) -> str:
    """``trentd.kms.keys`` → ``kms``; ``trentd.cli`` → ``cli``; ``trentd`` → ``trentd``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def unit_imports(graph: Graph) -> dict[tuple[str, str], list[Import]]:
    """The imports between different units, by (importing unit, imported unit)."""
    out: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in graph.imports:
        pair = unit_of(imp.source), unit_of(imp.target)
        if pair[0] != pair[1]:
            out[pair].append(imp)
    return dict(out)


def unit_edges(graph: Graph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {unit_of(m): set() for m in graph.modules}
    for source, target in unit_imports(graph):
        edges[source].add(target)
    return edges


def mutual_pairs(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))


def merge(edges: dict[str, set[str]], pair: tuple[str, str]) -> dict[str, set[str]]:
    """The graph with the two units of ``pair`` as one node, named ``a+b``."""
    joined = "+".join(pair)

    def name(unit: str) -> str:
        return joined if unit in pair else unit

    merged: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        merged[name(source)] |= {name(t) for t in targets if name(t) != name(source)}
    return dict(merged)


def layers(edges: dict[str, set[str]]) -> list[list[str]]:
    """Acyclic ``edges`` in layers, lowest first: a node sits one layer above the highest it imports."""
    level: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in level:
            level[node] = 1 + max((depth(t) for t in edges.get(node, ())), default=-1)
        return level[node]

    for node in edges:
        depth(node)
    return [sorted(n for n in level if level[n] == i) for i in range(max(level.values(), default=-1) + 1)]


# --- reports ------------------------------------------------------------------------------------------

def explain_cycle(path: list[str], evidence: Callable[[str, str], list[Import]]) -> str:
    """One line per step of a cycle, with the import statements that make it (at most three)."""
    out = [" -> ".join(path)]
    for source, target in pairwise(path):
        found = evidence(source, target)
        out.append(f"  {source} -> {target}:")
        out.extend(f"    {imp}" for imp in found[:3])
        if len(found) > 3:
            out.append(f"    … and {len(found) - 3} more")
    return "\n".join(out)


def module_cycle_report(graph: Graph) -> str:
    """Empty when no modules import each other in a circle; else each circle, explained."""
    edges = graph.edges()
    found = cycles(edges)
    return "\n\n".join(f"modules {', '.join(group)} import each other in a circle, e.g.\n"
                       + explain_cycle(shortest_cycle(edges, group), graph.evidence) for group in found)


def layering_report(graph: Graph) -> tuple[str, list[list[str]]]:
    """(problems, layers): problems is empty when the units form layers (at most one mutual pair,
    which then counts as one layer); layers is the order found, lowest first (empty on problems)."""
    edges = unit_edges(graph)
    between = unit_imports(graph)

    def evidence(source: str, target: str) -> list[Import]:
        """The imports from unit (or merged pair) ``source`` to ``target``."""
        return [imp for a in source.split("+") for b in target.split("+") for imp in between.get((a, b), [])]

    pairs = mutual_pairs(edges)
    if len(pairs) > 1:
        return (f"{len(pairs)} pairs of units import each other (at most one may):\n"
                + "\n".join(explain_cycle([a, b, a], evidence) for a, b in pairs)), []
    reduced = merge(edges, pairs[0]) if pairs else edges
    found = cycles(reduced)
    if found:
        return "\n\n".join(f"units {', '.join(group)} import each other in a circle, e.g.\n"
                             + explain_cycle(shortest_cycle(reduced, group), evidence) for group in found), []
    return "", layers(reduced)


def main(argv: list[str]) -> int:
    graph = build_graph(Path(argv[1] if len(argv) > 1 else "src/trentd"))
    report = module_cycle_report(graph)
    print(report or "no import cycle among modules")
    problems, order = layering_report(graph)
    print(problems or "layers, lowest first:")
    for i, units in enumerate(order):
        print(f"  {i}: {' '.join(units)}")
    return 1 if report or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
