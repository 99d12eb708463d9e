"""Typed JSON for Python test values (arguments and expected results).

JSON cannot tell a tuple from a list, has no sets, no non-string dict keys and no NaN, but
test verdicts depend on exactly those distinctions (``(1, 2) != [1, 2]``). Values are encoded
as plain JSON where that is lossless and as one-key tagged objects otherwise:

``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$frozenset": [...]}``,
``{"$dict": [[k, v], ...]}`` (non-string keys, or a key starting with ``$``),
``{"$float": "nan" | "inf" | "-inf"}``, ``{"$complex": [re, im]}``, ``{"$bytes": "<base64>"}``.

Only these exact types are representable; anything else is rejected, which is what lets the
sandbox treat a decoded value as trusted plain data.
"""

from __future__ import annotations

import base64
import math
import sys
from typing import Any

# Test values include integers of more than 4,300 digits (HumanEval/83 and /139 expect them), which
# Python refuses to convert to/from decimal text by default, json.loads and json.dumps included.
# Lifted (process-wide) wherever typed values are used: every reader of problem or test JSON
# imports this module, and JSON parsing happens before decode() sees a value.
sys.set_int_max_str_digits(0)


class UnsupportedValue(TypeError):
    pass


_SCALARS = (bool, int, str, type(None))


def encode(v: Any) -> Any:
    t = type(v)
    if t in _SCALARS:
        return v
    if t is float:
        if math.isfinite(v):
            return v
        return {"$float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if t is list:
        return [encode(x) for x in v]
    if t is tuple:
        return {"$tuple": [encode(x) for x in v]}
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: encode(x) for k, x in v.items()}
        return {"$dict": [[encode(k), encode(x)] for k, x in v.items()]}
    if t is set or t is frozenset:
        items = [encode(x) for x in v]
        try:  # deterministic output for identical sets
            items.sort(key=repr)
        except Exception:  # noqa: BLE001
            pass
        return {"$set" if t is set else "$frozenset": items}
    if t is complex:
        return {"$complex": [encode(v.real), encode(v.imag)]}
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    raise UnsupportedValue(f"cannot encode value of type {t.__name__}")


def decode(j: Any) -> Any:
    t = type(j)
    if t in _SCALARS or t is float:
        return j
    if t is list:
        return [decode(x) for x in j]
    if t is dict:
        if len(j) == 1:
            (k, x), = j.items()
            if k.startswith("$"):
                return _decode_tagged(k, x)
        return {k: decode(x) for k, x in j.items()}
    raise UnsupportedValue(f"cannot decode JSON value of type {t.__name__}")


def _decode_tagged(tag: str, x: Any) -> Any:
    if tag == "$tuple":
        return tuple(decode(i) for i in x)
    if tag == "$set":
        return {decode(i) for i in x}
    if tag == "$frozenset":
        return frozenset(decode(i) for i in x)
    if tag == "$dict":
        return {decode(k): decode(v) for k, v in x}
    if tag == "$float":
        return float(x)
    if tag == "$complex":
        return complex(decode(x[0]), decode(x[1]))
    if tag == "$bytes":
        return base64.b64decode(x)
    raise UnsupportedValue(f"unknown value tag {tag!r}")
