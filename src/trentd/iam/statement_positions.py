"""Where each statement of a policy document is, as the IAM simulator's MatchedStatements point
at it: the 1-based line and column of the statement's opening ``{`` and of its closing ``}``.

Python's json module keeps no positions, so the top level of the document is walked here (keys
and values read with json's ``raw_decode``); the document has been
validated by the policy parser already, so this walk meets only well-formed JSON.
"""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _value_end(text: str, i: int) -> int:
    return _DECODER.raw_decode(text, i)[1]


def _element_spans(text: str, i: int) -> list[tuple[int, int]]:
    """(start, end) offsets of the Statement value's objects: one object, or each of a list's."""
    if text[i] != "[":
        return [(i, _value_end(text, i) - 1)]
    spans, i = [], _skip_space(text, i + 1)
    while text[i] != "]":
        end = _value_end(text, i)
        spans.append((i, end - 1))
        i = _skip_space(text, end)
        if text[i] == ",":
            i = _skip_space(text, i + 1)
    return spans


def statement_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of each statement, in document order (the last Statement key wins, as in json)."""
    i = _skip_space(text, text.find("{") + 1)
    spans: list[tuple[int, int]] = []
    while i < len(text) and text[i] != "}":
        key, i = _DECODER.raw_decode(text, i)
        i = _skip_space(text, _skip_space(text, i) + 1)  # past the colon
        if key == "Statement":
            spans = _element_spans(text, i)
        i = _skip_space(text, _value_end(text, i))
        if text[i] == ",":
            i = _skip_space(text, i + 1)
    return spans


def position(text: str, offset: int) -> dict:
    line_start = text.rfind("\n", 0, offset) + 1
    return {"Line": text.count("\n", 0, offset) + 1, "Column": offset - line_start + 1}


def statement_positions(text: str) -> list[tuple[dict, dict]]:
    """(StartPosition, EndPosition) of each statement; empty if the document cannot be walked."""
    try:
        return [(position(text, start), position(text, end)) for start, end in statement_spans(text)]
    except (ValueError, IndexError):
        return []
