"""Command-line options, the environment variables that mirror them, and the config file.

Each option is declared once (``add``): its flag, type, default and variable (``TRENTD_`` and the
flag's name). argparse leaves an option that is not on the command line at ``None``; ``resolve``
then takes, in this order, the variable (parsed only then: a flag given on the command line wins
and its variable is never read), the config file (``--config FILE``, TOML) and the default, and
notes where each value came from. A bad value is a ``ConfigError`` that names the variable or
the file's key, which the command line reports in one line (exit 2).

The config file's keys are the long flag names without ``--`` (``port = 4599``); a table takes a
flag's first word (``[tls] cert = "…"`` is ``tls-cert``). Switches are booleans, repeatable flags
arrays.

Kubernetes injects ``TRENTD_PORT=tcp://10.0.0.1:4599`` (and ``TRENTD_SERVICE_*``,
``TRENTD_PORT_4599_TCP*``) into every pod of a namespace with a Service named trentd: a value of
that form is ignored with a warning, and the other injected names are never read.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
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
    name: str  # the long flag without "--", as the config file names it
    dest: str
    variable: str
    parse: Callable[[str], Any]
    default: Any
    kind: str  # "value", "switch" or "list"
    mask: Callable[[Any], Any] | None = None  # how ``config show`` shows a value that may hold a secret


_SPEC_PREFIX = "_option_"  # the namespace carries each declared option's Spec under this prefix
SOURCES = "_sources"  # ... and, once resolved, where each value came from: {dest: source}
CONFIG = "config"  # the option naming the config file, resolved before the others
# Every option any command declares, by name: the keys a config file may hold.
KNOWN: dict[str, Spec] = {}


def boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected 1, true, yes, 0, false, no or nothing")


def add(parser: argparse._ActionsContainer, flag: str, *, default: Any = None, type: Callable[[str], Any] = str,
        switch: bool = False, repeat: bool = False, help: str | None = None, variable: str | None = None,
        mask: Callable[[Any], Any] | None = None, negatable: bool = False, shown_default: str | None = None,
        **argparse_options) -> None:
    """Declare ``--flag`` on ``parser``, mirrored by ``TRENTD_<FLAG>`` (or ``variable``); a
    ``repeat`` option's variable is comma-separated. A ``negatable`` switch also has ``--no-FLAG``
    (its variable stays ``TRENTD_<FLAG>``, set to a false word); ``shown_default`` is the default
    as help words it, for one that depends on other options."""
    name = flag[2:]
    dest = name.replace("-", "_")
    variable = variable or f"TRENTD_{dest.upper()}"
    kind = "switch" if switch else "list" if repeat else "value"
    spec = KNOWN[name] = Spec(name, dest, variable, boolean if switch else type, default, kind, mask)
    # Kept in the parser's defaults, so the namespace of the command that runs carries exactly the
    # specs of its own options (argument groups share their parser's defaults).
    parser.set_defaults(**{_SPEC_PREFIX + dest: spec})
    shown = ("off" if not default else "on") if switch else ("none" if default in (None, [], "") else default)
    help_text = f"{help + ' ' if help else ''}(default: {shown_default or shown}; environment: {variable})"
    if switch and negatable:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text,
                            **argparse_options)
    elif switch:
        parser.add_argument(flag, action="store_true", default=None, help=help_text, **argparse_options)
    elif repeat:
        parser.add_argument(flag, action="append", default=None, type=type, help=help_text, **argparse_options)
    else:
        parser.add_argument(flag, default=None, type=type, help=help_text, **argparse_options)


def resolve(args: argparse.Namespace, environ: os._Environ | dict | None = None, warn=None) -> argparse.Namespace:
    """Fill every option the command line left unset from its variable, else the config file,
    else its default; ``args._sources`` says which for each."""
    environ = os.environ if environ is None else environ
    warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
    specs = {spec.dest: spec for spec in (getattr(args, n) for n in list(vars(args)) if n.startswith(_SPEC_PREFIX))}
    for dest in specs:
        delattr(args, _SPEC_PREFIX + dest)
    sources: dict[str, str] = {}
    file_values: dict[str, Any] = {}
    if CONFIG in specs:  # the file is found first, from its own flag or variable
        _fill(args, specs[CONFIG], {}, environ, warn, sources)
        file_values = read_config(args.config) if args.config else {}
    for dest, spec in specs.items():
        if dest != CONFIG:
            _fill(args, spec, file_values, environ, warn, sources)
    setattr(args, SOURCES, sources)
    return args


def _fill(args, spec: Spec, file_values: dict, environ, warn, sources: dict) -> None:
    if getattr(args, spec.dest) is not None:
        sources[spec.dest] = "flag"
        return
    value = _from_environment(spec, environ, warn)
    if value is not _ABSENT:
        sources[spec.dest] = "environment"
    elif spec.name in file_values:
        value, sources[spec.dest] = file_values[spec.name], "file"
    else:
        value, sources[spec.dest] = spec.default, "default"
    setattr(args, spec.dest, value)


_ABSENT = object()  # a variable that is not set (or set to nothing, or to a Kubernetes service link)


def _from_environment(spec: Spec, environ, warn) -> Any:
    text = environ.get(spec.variable)
    if text is None:
        return _ABSENT
    if _SERVICE_LINK.fullmatch(text.strip()):
        warn(f"trentd: ignoring {spec.variable}={text} (a service link Kubernetes injects, not a trentd setting)")
        return _ABSENT
    if spec.kind == "value" and not text.strip():
        return _ABSENT  # set but empty: as if not set
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


# --- the config file -------------------------------------------------------------------------------

def read_config(path: str) -> dict[str, Any]:
    """The file's values by option name, each checked against its option's type."""
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):  # [tls] cert = … is tls-cert
            for inner, inner_value in value.items():
                _put(values, f"{key}-{inner}", inner_value, path, f"[{key}] {inner}")
        else:
            _put(values, key, value, path, key)
    return values


def _put(values: dict, name: str, value: Any, path: str, shown: str) -> None:
    spec = KNOWN.get(name)
    if spec is None or name == CONFIG:
        raise ConfigError(f"{path}: unknown key {shown!r}")
    if name in values:
        raise ConfigError(f"{path}: {shown!r} is given twice (as a key and in a table)")
    try:
        values[name] = _typed(spec, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {shown!r}: {exc}") from None


def _typed(spec: Spec, value: Any) -> Any:
    if spec.kind == "switch":
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if spec.kind == "list":
        if not isinstance(value, list):
            raise TypeError("expected an array, e.g. [\"a\", \"b\"]")
        return [_scalar(spec.parse, item) for item in value]
    return _scalar(spec.parse, value)


def _scalar(parse, value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise TypeError(_expected(parse))
    if parse is int:
        if not isinstance(value, int):
            raise TypeError(_expected(parse))
        return value
    if parse is float:
        if not isinstance(value, (int, float)):
            raise TypeError(_expected(parse))
        return float(value)
    if not isinstance(value, str):
        raise TypeError(_expected(parse))
    return parse(value)


def _expected(parse) -> str:
    return {int: "expected a whole number", float: "expected a number"}.get(parse, "expected a string")


def shown(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every option of a resolved namespace with its value (secrets masked) and source."""
    out = {}
    for dest, source in getattr(args, SOURCES).items():
        spec = next(s for s in KNOWN.values() if s.dest == dest)
        value = getattr(args, dest)
        if spec.mask is not None and value:
            value = spec.mask(value)
        out[spec.name] = {"Value": value, "Source": source}
    return out
