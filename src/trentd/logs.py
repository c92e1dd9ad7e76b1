"""trentd's own output: ``--log-format text`` (as it always was) or ``json`` (docs/operations.md, "Logs").

In json mode every line a serving process prints is one JSON object (``time``, ``level``,
``logger``, ``message``, ``process``; ``exc_info`` with a traceback; the access log's members),
at most ``LINE_MAX`` bytes with its newline, written with a single write(): POSIX makes a pipe
write of at most PIPE_BUF (4096) bytes atomic, so lines of several workers sharing one pipe never
interleave. Long members are cut to fit (a message keeps its start; a traceback its start and its end,
where the exception is).

The formatter is a few lines on top of ``logging`` and orjson (already a dependency) rather than
python-json-logger: the byte budget and the one-write line are the parts that matter here, and
that library does neither. Nothing here imports the rest of trentd.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import threading
import time

import orjson

LINE_MAX = 4096  # bytes of a line, newline included: PIPE_BUF on Linux
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CUT = "…"  # marks where a member was cut
_CUT = CUT.encode()
_CUTTABLE = ("message", "exc_info", "stack_info")  # the members that can be long
_BOTH_ENDS = frozenset({"exc_info", "stack_info"})  # a traceback's last line says what went wrong

_json = False  # this process logs JSON lines (set by setup)


def log_format(text: str) -> str:
    """The value of ``--log-format``."""
    if text not in FORMATS:
        raise ValueError("expected text or json")
    return text


def json_mode() -> bool:
    return _json


# --- one JSON line -------------------------------------------------------------------------------
def fit(obj: dict, limit: int = LINE_MAX - 1) -> bytes:
    """``obj`` as JSON of at most ``limit`` bytes: the long text members (message, traceback) are
    cut to one length, so that they share the room, until it fits."""
    data = _dumps(obj)
    for _ in range(4):  # one round fits; more: safety
        if len(data) <= limit:
            return data
        sizes = {k: _json_size(obj[k]) for k in _CUTTABLE if isinstance(obj.get(k), str) and obj[k]}
        level = _level(sorted(sizes.values(), reverse=True), len(data) - limit)
        for name, size in sizes.items():
            if size > level:
                obj[name] = _cut(obj[name], level, name in _BOTH_ENDS)
        data = _dumps(obj)
    if len(data) <= limit:
        return data
    return _dumps({"time": obj.get("time"), "level": obj.get("level"), "message": "log line too long"})


def _level(sizes: list[int], over: int) -> int:
    """The size (JSON bytes) to cut the longest of ``sizes`` (descending) to, so that together
    they lose ``over`` bytes and each gains the CUT mark."""
    total = 0
    for count, size in enumerate(sizes, 1):
        total += size
        level = (total - over - count * len(_CUT)) // count
        following = sizes[count] if count < len(sizes) else 0
        if level >= following:
            return max(level, 0)
    return 0


def _json_size(text: str) -> int:
    return len(_dumps({"": text})) - 7  # {"":"…"}: the string's encoded size without its quotes


def _cut(text: str, size: int, both_ends: bool) -> str:
    """``text`` cut to ``size`` bytes of JSON plus the CUT mark (a character split in two is dropped)."""
    raw = text.encode("utf-8", "surrogatepass")
    keep = size
    while True:
        if both_ends:
            head = keep // 2
            parts = raw[:head].decode("utf-8", "ignore"), raw[len(raw) - (keep - head):].decode("utf-8", "ignore")
        else:
            parts = raw[:keep].decode("utf-8", "ignore"), ""
        excess = _json_size(parts[0]) + _json_size(parts[1]) - size
        if excess <= 0 or keep == 0:  # escapes make JSON longer than UTF-8: cut more until it fits
            return parts[0] + CUT + parts[1]
        keep = max(keep - excess, 0)


def _dumps(obj: dict) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # a lone surrogate in a message, or a value orjson does not know
        return orjson.dumps({k: _plain(v) for k, v in obj.items()})


def _plain(value):
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object; a record's ``fields`` (a dict) become members of their own."""

    def format(self, record: logging.LogRecord) -> str:
        obj = {"time": _iso(record.created), "level": record.levelname, "logger": record.name,
               "message": record.getMessage(), "process": record.process}
        fields = getattr(record, "fields", None)
        if fields:
            obj.update(fields)
        if record.exc_info:
            obj["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exc_info"] = record.exc_text
        if record.stack_info:
            obj["stack_info"] = self.formatStack(record.stack_info)
        return fit(obj).decode("utf-8")


class LineHandler(logging.Handler):
    """Each record as one line, written to a file descriptor (stderr) with one write().

    Making one (dictConfig does, in the server and again, through uvicorn, in each worker before
    the app is loaded) also sends Python warnings and uncaught exceptions to logging: set up at
    that moment, no window is left in which they would still be printed as plain text."""

    def __init__(self, fd: int = 2, level: int = logging.NOTSET):
        super().__init__(level)
        self.fd = fd
        _route_to_logging()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
            while data:  # one write() but for a short write (a signal), which the loop finishes
                data = data[os.write(self.fd, data):]
        except Exception:
            self.handleError(record)


# --- setting a process up -------------------------------------------------------------------------
def logging_config(level: str) -> dict:
    """The dictConfig of json mode, also given to uvicorn (``log_config``), which applies it in
    the supervisor and again in each worker: uvicorn's loggers go through the root's handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "trentd.logs.JsonFormatter"}},
        "handlers": {"line": {"()": "trentd.logs.LineHandler", "formatter": "json"}},
        "loggers": {"uvicorn": {"handlers": [], "propagate": True},
                    "uvicorn.error": {"handlers": [], "propagate": True},
                    # trentd writes its own access log (http/access.py), which knows the operation and caller
                    "uvicorn.access": {"handlers": [], "propagate": False}},
        "root": {"handlers": ["line"], "level": level.upper()},
    }


def setup(fmt: str, level: str) -> None:
    """Logging of this process (the server, and each worker again): text as before, or JSON lines
    for log records, Python warnings and exceptions nobody caught (LineHandler)."""
    if fmt != "json":
        logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
        return
    logging.config.dictConfig(logging_config(level))


def _route_to_logging() -> None:
    """Python warnings and exceptions nobody caught become records (JSON lines), not raw text."""
    global _json
    _json = True
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = lambda a: _uncaught(a.exc_type, a.exc_value, a.exc_traceback, a.thread)
    sys.unraisablehook = lambda u: logging.getLogger("trentd").error(
        "%s: %r", u.err_msg or "Exception ignored in", u.object,
        exc_info=(u.exc_type, u.exc_value, u.exc_traceback) if u.exc_value is not None else None)


def _uncaught(kind, value, tb, thread=None) -> None:
    if kind is not None and issubclass(kind, (KeyboardInterrupt, SystemExit)):
        return sys.__excepthook__(kind, value, tb) if thread is None else None
    where = f" in thread {thread.name}" if thread is not None else ""
    logging.getLogger("trentd").critical("uncaught exception%s", where, exc_info=(kind, value, tb))


def notice(text: str, level: int = logging.INFO, stream=None) -> None:
    """A line for the person starting trentd (the --dev banner, first start, TLS…): printed as it
    is in text mode (to ``stream``, stdout by default); in json mode a record of the ``trentd``
    logger, shown whatever --log-level says, as the printed line always was."""
    if not _json:
        print(text, file=stream or sys.stdout, flush=True)
        return
    logger = logging.getLogger("trentd")
    logger.handle(logger.makeRecord(logger.name, level, __name__, 0, text, (), None))
