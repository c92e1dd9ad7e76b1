"""docs/configuration.md documents every flag of ``trentd serve`` and every admin command."""

from __future__ import annotations

import argparse
from pathlib import Path

from trentd.cli import build_parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_serve_flag_and_its_variable_is_documented():
    serve = _subcommands(build_parser())["serve"]
    flags = [opt for action in serve._actions for opt in action.option_strings if opt.startswith("--") and opt != "--help"]
    missing = [f for f in flags if f"`{f}`" not in DOC]
    assert not missing, f"add these `trentd serve` flags to docs/configuration.md: {missing}"
    variables = ["TRENTD_" + f[2:].upper().replace("-", "_") for f in flags]
    missing = [v for v in variables if v not in DOC]
    assert not missing, f"add these environment variables to docs/configuration.md: {missing}"


def test_every_command_is_documented():
    missing = [name for name in _subcommands(build_parser()) if f"trentd {name}" not in DOC]
    assert not missing, f"add these commands to docs/configuration.md: {missing}"
