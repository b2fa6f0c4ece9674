"""A key given twice in one object of a JSON request body (``{"customer_id": "C1",
"customer_id": "X"}``) is refused: every JSON parser the service uses keeps the last one
silently, so the request would be answered for a customer, or stored with a value, that the
sender may not have meant.

``repeated_key`` finds it exactly, parsing the body again with the standard library (about twice
orjson's time). POST /predict's fast path cannot afford that on every request, so it asks
``may_repeat`` first: a bound on the keys the raw text can hold, counted in C, against the keys
orjson kept (well under a microsecond for a request by id); only a body where they differ is
handed to FastAPI, whose route then checks exactly.
"""

from __future__ import annotations

import json
from typing import Any

from serving.errors import BadRequestError

# A key's closing quote is followed by its colon or by whitespace before it: each key ends in
# one of these (strings may end in them too: the count is a bound, never an undercount).
KEY_ENDS = (b'":', b'" ', b'"\n', b'"\t', b'"\r')
# Past this size the bound's count and walk cost more than the exact parse.
SMALL_BODY = 4096


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in the order given, repeats kept."""


def repeated_key(body: bytes) -> str | None:
    """Where the first key given twice is, e.g. ``events[0].customer_id``; None when no
    object of ``body`` repeats a key, or ``body`` is not JSON (the parser's error is the
    route's to report)."""
    try:
        doc = json.loads(body, object_pairs_hook=_Pairs)
    except ValueError:
        return None
    return _first(doc, "")


def _first(node: Any, path: str) -> str | None:
    """The first repeat in document order: a repeat inside an earlier member's value comes
    before a repeat of a later member."""
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            here = f"{path}.{key}" if path else key
            if key in seen:
                return here
            seen.add(key)
            found = _first(value, here)
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found = _first(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def may_repeat(body: bytes, doc: Any) -> bool:
    """False only when no object of ``body`` repeats a key; ``doc`` is ``body`` parsed (by a
    parser that keeps one value per key). The raw text holds at most as many keys as key
    ends, and the parsed objects hold every key given once: equal counts, no repeat."""
    if len(body) > SMALL_BODY:
        return repeated_key(body) is not None
    return sum(body.count(end) for end in KEY_ENDS) > _keys(doc)


def _keys(node: Any) -> int:
    if type(node) is dict:
        return len(node) + sum(_keys(v) for v in node.values() if type(v) in (dict, list))
    if type(node) is list:
        return sum(_keys(v) for v in node if type(v) in (dict, list))
    return 0


def refuse_repeated_keys(body: bytes) -> None:
    """BadRequestError (422) naming the first key given twice and where."""
    where = repeated_key(body)
    if where is not None:
        raise BadRequestError(f"{where}: given twice; each key of a JSON object must be given "
                              "once", where, [{"field": where, "message": "given twice"}])
