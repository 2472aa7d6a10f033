"""What the hub takes as a JSON value, wherever it comes from: a body of the API (hub.interfaces.api),
a back office's events, a source's answer (the adapters). One strict reader, so that what the store
holds is what it can hold and what a recipient reads means one thing:

- UTF-8 only (RFC 8259 §8.1; no BOM), and each member named once in an object (parsers disagree
  on which of two wins: a field that routes or decides must mean one thing);
- no NaN or Infinity, integers within 64 bits, finite numbers;
- no NUL, control character (but tab, CR and LF), DEL, C1 control or lone surrogate in a string or a
  key (PostgreSQL's JSONB refuses NUL and NaN outright; the others are never text a person wrote);
- nesting bounded (deeply nested input is a classic way to exhaust a parser).

Each fault is a MalformedMessage naming where it is (a JSON pointer), never a crash.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from hub.domain.errors import MalformedMessage

__all__ = ["BAD_CHARACTERS", "INT_MAX", "INT_MIN", "MAX_JSON_DEPTH", "bad_text", "check_value", "strict_loads"]

MAX_JSON_DEPTH = 64


def strict_loads(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body strictly, or MalformedMessage naming where it breaks the rules: not JSON
    in UTF-8 (RFC 8259 §8.1; no BOM), a member named twice in one object, NaN/Infinity, a number out of range (integers: 64 bits, the store's; floats:
    finite), a string (or key) holding a NUL, another control character but tab/CR/LF, or a lone
    surrogate, or nesting deeper than max_depth."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_members)
    except RecursionError:
        raise MalformedMessage(f"JSON nests deeper than {max_depth} levels", code="json_too_deep") from None
    except _Constant as err:
        raise MalformedMessage(f"{err.args[0]} is not a JSON number") from None
    except _Duplicate as err:
        raise MalformedMessage([{"in": "body", "name": err.args[0][:64],
                                 "detail": "a member named twice in one object"}], code="duplicate_member") from None
    except UnicodeDecodeError as err:
        raise MalformedMessage(f"body is not UTF-8: {str(err)[:200]}") from None
    except ValueError as err:
        raise MalformedMessage(f"body is not JSON: {str(err)[:200]}") from None
    fault = check_value(value, max_depth, strings=_MAY_HOLD_BAD_TEXT.search(text) is not None)
    if fault is not None:
        code, where, what = fault
        raise MalformedMessage([{"in": "body", "name": where or "/", "detail": what}], code=code)
    return value


INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
# C0 controls but tab, LF and CR; DEL; C1 controls; UTF-16 surrogates (only ever lone in a str)
BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_text(text: str) -> bool:
    return BAD_CHARACTERS.search(text) is not None


def check_value(value: Any, max_depth: int = MAX_JSON_DEPTH, strings: bool = True) -> tuple[str, str, str] | None:
    """The first rule a parsed JSON value breaks, as (code, JSON pointer, what), or None; strings
    (and keys) are not looked at when `strings` is false. Iterative: a recursive walk would itself
    be the weakness. The walk keeps no paths; only a fault is walked again to name its place."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    search, isfinite, pop, push = BAD_CHARACTERS.search, math.isfinite, stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is dict:
            if depth >= max_depth:
                return _fault(value, max_depth, strings)
            if strings and any(search(key) for key in node):
                return _fault(value, max_depth, strings)
            for item in node.values():
                push((item, depth + 1))
        elif kind is list:
            if depth >= max_depth:
                return _fault(value, max_depth, strings)
            for item in node:
                push((item, depth + 1))
        elif kind is str:
            if strings and search(node):
                return _fault(value, max_depth, strings)
        elif kind is int:
            if not INT_MIN <= node <= INT_MAX:
                return _fault(value, max_depth, strings)
        elif kind is float and not isfinite(node):
            return _fault(value, max_depth, strings)
    return None


def _fault(value: Any, max_depth: int, strings: bool) -> tuple[str, str, str]:
    """The same walk, slowly, with each node's JSON pointer: the first fault and where it is."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, (dict, list)) and depth >= max_depth:
            return "json_too_deep", where, f"JSON nests deeper than {max_depth} levels"
        if isinstance(node, dict):
            for key, item in node.items():
                if strings and BAD_CHARACTERS.search(key):
                    return "invalid_string", where, "a control character, NUL or lone surrogate in a key"
                stack.append((item, depth + 1, f"{where}/{key.replace('~', '~0').replace('/', '~1')}"))
        elif isinstance(node, list):
            stack.extend((item, depth + 1, f"{where}/{i}") for i, item in enumerate(node))
        elif isinstance(node, str):
            if strings and BAD_CHARACTERS.search(node):
                return "invalid_string", where, "a control character, NUL or lone surrogate in a string"
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int) and not INT_MIN <= node <= INT_MAX:
            return "number_out_of_range", where, "an integer beyond 64 bits"
        elif isinstance(node, float) and not math.isfinite(node):
            return "number_out_of_range", where, "a number too large for a double"
    raise AssertionError("check_value found a fault _fault does not")   # pragma: no cover


# In JSON text a control character can only reach a string as a \u escape (a raw one is refused
# by the parser), and DEL or a C1 control only literally: without either, no string needs a look.
_MAY_HOLD_BAD_TEXT = re.compile("\\\\u|[\x7f-\x9f]")


class _Constant(Exception):
    pass


class _Duplicate(Exception):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member appears twice is refused: parsers disagree on which one wins (the
    hub's would take the last), and a field that routes or decides must mean one thing."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise _Constant(name)
