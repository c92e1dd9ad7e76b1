"""docs/design.md shows the house as it is: every path it names exists, every link to another doc
page reaches a file, and its layer table agrees with the imports read from the source
(tests/unit/import_graph.py): each unit of ``trentd`` in exactly one row, and every import
pointing to a lower row, but for the one mutual pair the table writes as `a`+`b`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .import_graph import build_graph, unit_imports, unit_of

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "trentd"
DOC = ROOT / "docs" / "design.md"
TEXT = DOC.read_text()

# Bases a path in the page may be written against: the package, the repository, the docs.
BASES = (SRC, ROOT, ROOT / "docs")
# A code span that names a file or directory: a slash or a known file ending, no spaces.
PATHLIKE = re.compile(r"`([\w./-]+(?:/|\.(?:py|sql|md|toml)))`")
PLACEHOLDER = re.compile(r"NNNN|<|\*")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.MULTILINE | re.DOTALL)
    assert match, f"docs/design.md has no section '## {title}'"
    return match.group(1)


def named_paths() -> list[str]:
    # left out: patterns (NNNN_name.sql, store/<engine>.py) and URL paths (/console/)
    return sorted({p for p in PATHLIKE.findall(TEXT) if not PLACEHOLDER.search(p) and not p.startswith("/")})


def exists(path: str) -> bool:
    if "/" not in path:  # a bare file name: somewhere in the package or the tests
        return any(SRC.rglob(path)) or any((ROOT / "tests").rglob(path))
    return any((base / path).exists() for base in BASES)


def test_every_path_named_exists():
    paths = named_paths()
    assert len(paths) > 50, paths  # the reader finds the page's paths
    missing = [p for p in paths if not exists(p)]
    assert not missing, f"docs/design.md names paths that do not exist (under src/trentd/ or the repository): {missing}"


def test_every_linked_page_exists():
    links = set(re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", TEXT))
    missing = sorted(link for link in links if not (DOC.parent / link).exists())
    assert not missing, f"docs/design.md links to pages that do not exist: {missing}"


def layer_table() -> tuple[dict[str, int], set[frozenset[str]]]:
    """unit -> row number, and the mutual pairs the table allows (written `a`+`b`)."""
    rows: dict[str, int] = {}
    pairs: set[frozenset[str]] = set()
    for number, units in re.findall(r"^\| (\d+) \| (.*?) \|", section("Layers"), re.MULTILINE):
        for unit in re.findall(r"`([\w]+)`", units):
            assert unit not in rows, f"{unit} is in two rows of the layer table"
            rows[unit] = int(number)
        pairs.update(frozenset(p) for p in re.findall(r"`(\w+)`\+`(\w+)`", units))
    return rows, pairs


@pytest.fixture(scope="module")
def graph():
    return build_graph(SRC)


def test_the_layer_table_names_every_unit_once(graph):
    rows, _ = layer_table()
    units = {unit_of(module) for module in graph.modules}
    assert set(rows) == units, (
        f"units missing from the layer table of docs/design.md: {sorted(units - set(rows))}; named there but not "
        f"units: {sorted(set(rows) - units)} (the layers: pytest -q -s tests/unit/test_import_structure.py)")


def test_every_import_points_to_a_lower_row_of_the_layer_table(graph):
    rows, pairs = layer_table()
    wrong = []
    for (source, target), imports in sorted(unit_imports(graph).items()):
        if source not in rows or target not in rows:
            continue  # reported by the test above
        if rows[target] < rows[source] or frozenset((source, target)) in pairs:
            continue
        wrong.append(f"{source} (row {rows[source]}) imports {target} (row {rows[target]}): {imports[0]}")
    assert not wrong, "docs/design.md's layer table disagrees with the imports:\n" + "\n".join(wrong)
