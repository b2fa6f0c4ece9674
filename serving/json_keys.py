"""The structure of a JSON request body, refused before any route reads it:

* a key given twice in one object (``{"customer_id": "C1", "customer_id": "X"}``): every JSON
  parser the service uses keeps the last one silently, so the request would be answered for a
  customer, or stored with a value, that the sender may not have meant;
* arrays and objects nested deeper than ``MAX_DEPTH``: no request of the API needs more than a
  few levels, and a few hundred levels overflowed the stack of the recursive code that reads
  them (a 500 and a traceback of thousands of lines). Every walk here is iterative.

``structure_problem`` finds either exactly, parsing the body again with the standard library
(about twice orjson's time). POST /predict's fast path cannot afford that on every request, so
it asks ``may_be_refused`` first: a bound on the keys the raw text can hold, counted in C,
against the keys orjson kept, and the depth of what orjson kept (about 1.3 us for a request by
id); only a body where they differ, or that is too deep, is handed to FastAPI, whose route then
checks exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from serving.errors import BadRequestError

# Past this size the bound's count and walk cost more than the exact parse.
SMALL_BODY = 4096
# Arrays and objects within one another, the body itself the first level. Well above what any
# route's schema nests (an event's free-form properties are the deepest), and far below the
# ~1,000 levels where Python's parsers and walkers run out of stack.
MAX_DEPTH = 64
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_CONTAINERS = (dict, list)  # what orjson parses arrays and objects to

Problem = tuple[Literal["repeat", "deep"], str]  # what, and where (a path like events[0].a)
# A string (an escaped quote does not end it) or a number: matching both, left to right, keeps
# the digits inside a string from reading as a number. Unrolled, so a long string is one pass.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?(\d+)(\.\d*)?([eE][-+]?\d*)?')


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in the order given, repeats kept."""


def repeated_key(body: bytes) -> str | None:
    """Where the first key given twice is, e.g. ``events[0].customer_id``; None when no
    object of ``body`` repeats a key, or ``body`` is not JSON (the parser's error is the
    route's to report)."""
    problem = structure_problem(body)
    return problem[1] if problem is not None and problem[0] == "repeat" else None


def structure_problem(body: bytes) -> Problem | None:
    """The first key given twice or the first value nested too deep, in document order; None
    when there is neither, or ``body`` is not JSON (the route reports the parser's error)."""
    try:
        doc = json.loads(body, object_pairs_hook=_Pairs)
    except RecursionError:  # the parser's own stack ran out: far deeper than the limit
        return "deep", ""
    except ValueError:
        return None
    return _first(doc)


def long_integer_at(text: str, limit: int) -> int | None:
    """Where the first integer with more than ``limit`` digits starts in the JSON ``text``
    (None: there is none). Python's parser refuses to convert one (its guard against
    quadratic-time conversion) without saying where; a number with a fraction or an exponent
    is a float, converted whatever its length, so it is not the one."""
    for m in _TOKEN.finditer(text):
        digits = m.group(1)
        if digits is not None and len(digits) > limit and m.group(2) is m.group(3) is None:
            return m.start()
    return None


def _members(node: Any, path: str) -> Iterator[tuple[str, str | None, Any]]:
    """(path, key or None for an array item, value) of each member of ``node``."""
    if isinstance(node, _Pairs):
        return ((f"{path}.{key}" if path else key, key, value) for key, value in node)
    return ((f"{path}[{i}]", None, item) for i, item in enumerate(node))


def _first(doc: Any) -> Problem | None:
    """A depth-first walk with its own stack: a repeat inside an earlier member's value comes
    before a repeat of a later member."""
    if not isinstance(doc, list):  # _Pairs is a list too
        return None
    stack: list[tuple[Iterator[tuple[str, str | None, Any]], set[str]]] = [
        (_members(doc, ""), set())]
    while stack:
        members, seen = stack[-1]
        for here, key, value in members:
            if key is not None:
                if key in seen:
                    return "repeat", here
                seen.add(key)
            if isinstance(value, list):
                if len(stack) >= MAX_DEPTH:
                    return "deep", here
                stack.append((_members(value, here), set()))
                break  # the value's members first; this object's iterator resumes after
        else:
            stack.pop()
    return None


def may_be_refused(body: bytes, doc: Any) -> bool:
    """False only when ``check_structure`` passes ``body``: no object repeats a key and
    nothing is nested deeper than MAX_DEPTH; ``doc`` is ``body`` parsed (by a parser that keeps
    one value per key). The raw text holds at most as many keys as key ends, and the parsed
    objects hold every key given once: equal counts, no repeat."""
    if len(body) > SMALL_BODY:
        return structure_problem(body) is not None
    keys = _keys(doc)
    return keys is None or _key_ends(body) > keys


def _keys(doc: Any) -> int | None:
    """The keys of every object of ``doc``; None when it is nested deeper than MAX_DEPTH.
    Level by level, so the depth is the number of levels."""
    keys, level, depth = 0, [doc], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return None
        deeper: list[Any] = []
        for node in level:
            kind = type(node)
            if kind is dict:
                keys += len(node)
                for value in node.values():
                    if type(value) in _CONTAINERS:
                        deeper.append(value)
            elif kind is list:
                for value in node:
                    if type(value) in _CONTAINERS:
                        deeper.append(value)
        level = deeper
    return keys


def _key_ends(body: bytes) -> int:
    """A bound on the keys of ``body``: a key's closing quote is followed by its colon or by
    whitespace before it (strings may end so too: a bound, never an undercount). Spelled out:
    a loop over the endings costs more than the counts."""
    return (body.count(b'":') + body.count(b'" ') + body.count(b'"\n') + body.count(b'"\t')
            + body.count(b'"\r'))


def check_structure(body: bytes) -> None:
    """BadRequestError (422) naming the first key given twice and where, or saying the body
    is nested deeper than MAX_DEPTH."""
    problem = structure_problem(body)
    if problem is None:
        return
    what, where = problem
    if what == "deep":
        raise too_deep()
    raise BadRequestError(f"{where}: given twice; each key of a JSON object must be given "
                          "once", where, [{"field": where, "message": "given twice"}])


def too_deep() -> BadRequestError:
    return BadRequestError(f"body: {TOO_DEEP} (arrays and objects within one another)", "body",
                           [{"field": "body", "message": TOO_DEEP}])
