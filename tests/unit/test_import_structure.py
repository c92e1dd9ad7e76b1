"""The import structure of src/trentd, read from the source (tests/unit/import_graph.py):

- no import cycle among modules (imports inside functions count);
- the top-level units of ``trentd`` (each subpackage, each top-level module) form layers: with at
  most one pair of units that import each other counted as one layer, no circle among units.

The layer order found is printed (``pytest -s``; or ``python tests/unit/import_graph.py``): it is
what docs/design.md shows. The checker's own logic is tested below on tiny packages in tmp_path.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .import_graph import Graph, build_graph, cycles, layering_report, module_cycle_report, shortest_cycle

SRC = Path(__file__).resolve().parents[2] / "src" / "trentd"


# --- trentd itself ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trentd() -> Graph:
    return build_graph(SRC)


def test_the_reader_sees_trentd(trentd):
    assert len(trentd.modules) > 50 and len(trentd.imports) > 100, (len(trentd.modules), len(trentd.imports))
    assert "trentd.cli" in trentd.modules


def test_no_import_cycle_among_modules(trentd):
    report = module_cycle_report(trentd)
    if report:
        pytest.fail("\n" + report, pytrace=False)


def test_units_form_layers(trentd):
    problems, order = layering_report(trentd)
    if problems:
        pytest.fail("\n" + problems, pytrace=False)
    print("\nlayers of trentd, lowest first:")
    for i, layer in enumerate(order):
        print(f"  {i}: {' '.join(layer)}")


# --- the checker, on synthetic packages -------------------------------------------------------------

def make_package(tmp_path: Path, files: dict[str, str]) -> Graph:
    """Write ``pkg/…`` files (directories get an empty ``__init__.py`` unless given) and read them."""
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
    return build_graph(root)


def edges_of(graph: Graph) -> set[tuple[str, str]]:
    return {(i.source, i.target) for i in graph.imports}


def test_a_cycle_is_found_with_its_importing_lines(tmp_path):
    graph = make_package(tmp_path, {
        "a.py": "from pkg import b\n",
        "b.py": "import os\nfrom . import c\n",
        "c.py": "X = 1\nfrom .a import thing\n",
    })
    report = module_cycle_report(graph)
    assert "modules pkg.a, pkg.b, pkg.c import each other in a circle" in report
    assert "pkg.a -> pkg.b -> pkg.c -> pkg.a" in report
    assert "pkg/b.py:2: from . import c" in report
    assert "pkg/c.py:2: from .a import thing" in report


def test_an_import_inside_a_function_counts(tmp_path):
    graph = make_package(tmp_path, {
        "a.py": "from .b import f\n",
        "b.py": "def f():\n    from .a import g  # lazy, to dodge the circle\n    return g\n",
    })
    assert ("pkg.b", "pkg.a") in edges_of(graph)
    assert "pkg.a -> pkg.b -> pkg.a" in module_cycle_report(graph)


def test_type_checking_imports_count(tmp_path):
    graph = make_package(tmp_path, {
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "b.py": "",
    })
    assert edges_of(graph) == {("pkg.a", "pkg.b")}


def test_relative_imports_and_submodule_names_resolve(tmp_path):
    graph = make_package(tmp_path, {
        "__init__.py": "VERSION = '1'\n",
        "top.py": "from pkg import VERSION\n",
        "sub/__init__.py": "from . import x\nfrom .. import top\n",
        "sub/x.py": "from . import NOT_A_MODULE\nfrom ..top import VALUE\nimport pkg.sub.y as y\nimport json\n",
        "sub/y.py": "from .deep.z import Z\n",
        "sub/deep/z.py": "from ...top import VALUE\nfrom ... import sub\n",
    })
    assert edges_of(graph) == {
        ("pkg.top", "pkg"),  # VERSION is not a module: the package itself
        ("pkg.sub", "pkg.sub.x"), ("pkg.sub", "pkg.top"),
        ("pkg.sub.x", "pkg.sub"), ("pkg.sub.x", "pkg.top"), ("pkg.sub.x", "pkg.sub.y"),
        ("pkg.sub.y", "pkg.sub.deep.z"),
        ("pkg.sub.deep.z", "pkg.top"), ("pkg.sub.deep.z", "pkg.sub"),
    }


def test_a_clean_layering_passes_and_gives_the_layers(tmp_path):
    graph = make_package(tmp_path, {
        "errors.py": "class Oops(Exception): pass\n",
        "store/__init__.py": "from .engine import Engine\n",
        "store/engine.py": "from ..errors import Oops\nclass Engine: pass\n",
        "kms/api.py": "import pkg.store.engine\nfrom pkg.errors import Oops\n",
        "kms/keys.py": "from . import api\n",
        "cli.py": "def main():\n    from .kms import keys\n",
    })
    assert module_cycle_report(graph) == ""
    assert layering_report(graph) == ("", [["errors", "pkg"], ["store"], ["kms"], ["cli"]])


def test_one_pair_of_units_importing_each_other_is_one_layer(tmp_path):
    graph = make_package(tmp_path, {
        "a/one.py": "from ..b.two import T\n",
        "b/two.py": "T = 2\n",
        "b/three.py": "from ..a.four import F\n",
        "a/four.py": "F = 4\n",
        "c.py": "from .a import one\n",
    })
    assert module_cycle_report(graph) == ""
    assert layering_report(graph) == ("", [["a+b", "pkg"], ["c"]])


def test_two_pairs_of_units_importing_each_other_fail(tmp_path):
    graph = make_package(tmp_path, {
        "a/one.py": "from ..b.two import T\n",
        "b/three.py": "from ..a.four import F\n",
        "c/one.py": "from ..d.two import T\n",
        "d/three.py": "from ..c.four import F\n",
        "a/four.py": "", "b/two.py": "", "c/four.py": "", "d/two.py": "",
    })
    problems, order = layering_report(graph)
    assert problems.startswith("2 pairs of units import each other (at most one may)")
    assert "a -> b -> a" in problems and "c -> d -> c" in problems
    assert "pkg/d/three.py:1: from ..c.four import F" in problems
    assert order == []


def test_a_circle_through_the_allowed_pair_fails(tmp_path):
    graph = make_package(tmp_path, {
        "a/one.py": "from ..b.two import T\nfrom ..c import C\n",
        "b/three.py": "from ..a.four import F\n",
        "c.py": "from .b.two import T\n",
        "a/four.py": "", "b/two.py": "",
    })
    problems, _ = layering_report(graph)
    assert "units a+b, c import each other in a circle" in problems
    assert "a+b -> c -> a+b" in problems
    assert "pkg/c.py:1: from .b.two import T" in problems


def test_a_circle_of_three_units_fails(tmp_path):
    graph = make_package(tmp_path, {
        "a.py": "from .b import lower\n",
        "b/__init__.py": "def lower():\n    from ..c import x\n",
        "c/x.py": "import pkg.a\n",
    })
    assert module_cycle_report(graph) != ""  # pkg.a -> pkg.b -> pkg.c.x -> pkg.a
    problems, _ = layering_report(graph)
    assert "units a, b, c import each other in a circle" in problems
    assert "a -> b -> c -> a" in problems
    assert "pkg/c/x.py:1: import pkg.a" in problems


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.sets(st.sampled_from("abcdef"), max_size=3), min_size=1))
def test_cycles_are_the_groups_that_reach_each_other(edges):
    edges = {node: targets - {node} for node, targets in edges.items()}
    for targets in list(edges.values()):
        for target in targets:
            edges.setdefault(target, set())

    def reach(node: str) -> set[str]:
        seen, todo = set(), [node]
        while todo:
            for succ in edges[todo.pop()]:
                if succ not in seen:
                    seen.add(succ)
                    todo.append(succ)
        return seen

    reachable = {node: reach(node) for node in edges}
    expected = {frozenset({n} | {m for m in reachable[n] if n in reachable[m]}) for n in edges}
    assert {frozenset(group) for group in cycles(edges)} == {g for g in expected if len(g) > 1}
    for group in cycles(edges):
        path = shortest_cycle(edges, group)
        assert path[0] == path[-1] == group[0] and all(b in edges[a] for a, b in pairwise(path))
