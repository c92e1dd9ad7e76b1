from pathlib import Path

from trentd.compat import render


def test_compatibility_matrix_is_current():
    doc = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
    assert doc.read_text() == render(), "run: python -m trentd.compat > docs/compatibility.md"
