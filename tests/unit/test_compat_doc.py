from pathlib import Path

from trentd.admin.compat import render


def test_compatibility_matrix_is_current():
    doc = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
    assert doc.read_text() == render(), "run: python -m trentd.admin.compat > docs/compatibility.md"
