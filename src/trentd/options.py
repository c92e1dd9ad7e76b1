"""Command-line options and the environment variables that mirror them.

Each option is declared once (``add``): its flag, type, default and variable (``TRENTD_`` and the
flag's name). argparse leaves an option that is not on the command line at ``None``; ``resolve``
then takes, in this order, the variable (parsed only then: a flag given on the command line wins
and its variable is never read) and the default. A bad value is a ``ConfigError`` that names the
variable, which the command line reports in one line (exit 2).

Kubernetes injects ``TRENTD_PORT=tcp://10.0.0.1:4599`` (and ``TRENTD_SERVICE_*``,
``TRENTD_PORT_4599_TCP*``) into every pod of a namespace with a Service named trentd: a value of
that form is ignored with a warning, and the other injected names are never read.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes"})
FALSE_WORDS = frozenset({"0", "false", "no", ""})
_SERVICE_LINK = re.compile(r"(tcp|udp|sctp)://[^/\s]+:\d+")


class ConfigError(ValueError):
    """A value that cannot be used; its message names where it came from."""


@dataclass(frozen=True)
class Spec:
    dest: str
    variable: str
    parse: Callable[[str], Any]
    default: Any
    kind: str  # "value", "switch" or "list"


_SPEC_PREFIX = "_option_"  # the namespace carries each declared option's Spec under this prefix


def boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected 1, true, yes, 0, false, no or nothing")


def add(parser: argparse.ArgumentParser, flag: str, *, default: Any = None, type: Callable[[str], Any] = str,
        switch: bool = False, repeat: bool = False, help: str | None = None, variable: str | None = None,
        **argparse_options) -> None:
    """Declare ``--flag`` on ``parser``, mirrored by ``TRENTD_<FLAG>`` (or ``variable``); a
    ``repeat`` option's variable is comma-separated."""
    dest = flag[2:].replace("-", "_")
    variable = variable or f"TRENTD_{dest.upper()}"
    kind = "switch" if switch else "list" if repeat else "value"
    # Kept in the parser's defaults, so the namespace of the command that runs carries exactly the
    # specs of its own options (argument groups share their parser's defaults).
    parser.set_defaults(**{_SPEC_PREFIX + dest: Spec(dest, variable, boolean if switch else type, default, kind)})
    shown = ("off" if not default else "on") if switch else ("none" if default in (None, [], "") else default)
    help_text = f"{help + ' ' if help else ''}(default: {shown}; environment: {variable})"
    if switch:
        parser.add_argument(flag, action="store_true", default=None, help=help_text, **argparse_options)
    elif repeat:
        parser.add_argument(flag, action="append", default=None, type=type, help=help_text, **argparse_options)
    else:
        parser.add_argument(flag, default=None, type=type, help=help_text, **argparse_options)


def resolve(args: argparse.Namespace, environ: os._Environ | dict | None = None, warn=None) -> argparse.Namespace:
    """Fill every option the command line left unset from its variable, else its default."""
    environ = os.environ if environ is None else environ
    warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
    for name in [n for n in vars(args) if n.startswith(_SPEC_PREFIX)]:
        spec = getattr(args, name)
        delattr(args, name)
        if getattr(args, spec.dest) is None:
            setattr(args, spec.dest, _from_environment(spec, environ, warn))
    return args


def _from_environment(spec: Spec, environ, warn) -> Any:
    text = environ.get(spec.variable)
    if text is None:
        return spec.default
    if _SERVICE_LINK.fullmatch(text.strip()):
        warn(f"trentd: ignoring {spec.variable}={text} (a service link Kubernetes injects, not a trentd setting)")
        return spec.default
    if spec.kind == "value" and not text.strip():
        return spec.default  # set but empty: as if not set
    try:
        if spec.kind == "list":
            return [spec.parse(item.strip()) for item in text.split(",") if item.strip()]
        return spec.parse(text.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{spec.variable}={text!r}: {_reason(spec.parse, exc)}") from None


def _reason(parse, exc: Exception) -> str:
    if parse is int:
        return "expected a whole number"
    if parse is float:
        return "expected a number"
    return str(exc) or "not a valid value"
