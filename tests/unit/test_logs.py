"""trentd/logs.py: a JSON log line is at most 4 KiB, whatever its members hold."""

from __future__ import annotations

import json
import logging
import random
import sys

from trentd import logs


def test_long_members_share_the_room_and_a_traceback_keeps_both_ends():
    try:
        raise ValueError("the exception line")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("trentd", logging.ERROR, __file__, 1, "é" * 5000, None, exc_info)
    record.exc_text = None
    formatter = logs.JsonFormatter()
    record.exc_info = (ValueError, ValueError("the exception line"), exc_info[2])
    line = formatter.format(record)
    assert len(line.encode()) <= logs.LINE_MAX - 1
    obj = json.loads(line)
    assert obj["message"].startswith("éé") and obj["message"].endswith("…") and len(obj["message"]) > 1500
    assert obj["exc_info"].startswith("Traceback (most recent call last):")
    assert obj["exc_info"].endswith("ValueError: the exception line")


def test_any_text_fits_in_one_line():
    rnd = random.Random(7)
    alphabet = ["a", "é", "\n", '"', "\\", "\x01", "😀", "\ud800"]  # escapes, multi-byte, a lone surrogate
    for _ in range(300):
        obj = {"time": "t", "level": "INFO", "process": 1, "principal": "arn:aws:iam::111122223333:user/" + "u" * 64,
               **{name: "".join(rnd.choices(alphabet, k=rnd.randint(0, 4000))) for name in ("message", "exc_info")}}
        data = logs.fit(dict(obj))
        assert len(data) <= logs.LINE_MAX - 1
        out = json.loads(data)
        assert all(out[k] == obj[k] for k in ("time", "level", "process", "principal"))
        assert isinstance(out["message"], str) and isinstance(out["exc_info"], str)
    # members that are never long (names, ids) are never cut; were one too long, the line says so
    assert json.loads(logs.fit({"time": "t", "level": "INFO", "message": "m", "x": "x" * 5000})) == {
        "time": "t", "level": "INFO", "message": "log line too long"}


def test_log_format_values():
    assert logs.log_format("json") == "json" and logs.log_format("text") == "text"
    try:
        logs.log_format("xml")
    except ValueError as exc:
        assert str(exc) == "expected text or json"
    else:
        raise AssertionError("xml accepted")
