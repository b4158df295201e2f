"""JSON text exactly as JavaScript's ``JSON.stringify`` writes it (number formatting, string
escaping, integer-like keys first), which TinyBase stores and hashes for object and array
cells."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Callable, Optional

__all__ = ["js_number", "js_dumps", "js_key_order"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def js_number(x: float) -> str:
    """``String(x)`` in JavaScript (x finite)."""
    x = float(x)
    if x == 0:
        return "0"
    if x != x or x in (float("inf"), float("-inf")):
        return "null"  # as JSON.stringify writes non-finite numbers
    sign = "-" if x < 0 else ""
    t = Decimal(repr(abs(x))).as_tuple()
    full = "".join(map(str, t.digits)).lstrip("0")
    s = full.rstrip("0")
    exp = int(t.exponent) + (len(full) - len(s))  # abs(x) == int(s) * 10**exp
    k = len(s)
    n = exp + k  # value = 0.s * 10**n
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = (s if k == 1 else s[0] + "." + s[1:]) + "e" + es
    return sign + out


def _js_string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    if _SURROGATE.search(out):
        out = _SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), out)
    return out


def _integer_key(k: str) -> Optional[int]:
    # An array index as JavaScript orders object keys: canonical decimal < 2**32 - 1.
    if not k or not k.isdigit() or not k.isascii() or (len(k) > 1 and k[0] == "0"):
        return None
    n = int(k)
    return n if n < 4294967295 else None


def js_key_order(keys: list) -> list:
    """Keys in JavaScript's property order: integer-like keys ascending first, then the rest in
    insertion order."""
    ints = [(n, k) for k in keys if (n := _integer_key(k)) is not None]
    if not ints:
        return list(keys)
    ints.sort()
    return [k for _, k in ints] + [k for k in keys if _integer_key(k) is None]


def js_dumps(obj: Any, default: Optional[Callable[[Any], Any]] = None) -> str:
    """Compact JSON text as ``JSON.stringify(obj)``. ``default`` converts other objects."""
    parts: list = []
    _write(obj, parts, default)
    return "".join(parts)


def _write(o: Any, out: list, default: Optional[Callable[[Any], Any]]) -> None:
    if o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, str):
        out.append(_js_string(o))
    elif isinstance(o, (int, float)):
        out.append(js_number(o))
    elif isinstance(o, dict):
        out.append("{")
        first = True
        for k in js_key_order([str(k) if not isinstance(k, str) else k for k in o.keys()]):
            v = o[k] if k in o else o[_orig_key(o, k)]
            if not first:
                out.append(",")
            first = False
            out.append(_js_string(k))
            out.append(":")
            _write(v, out, default)
        out.append("}")
    elif isinstance(o, (list, tuple)):
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            _write(v, out, default)
        out.append("]")
    elif default is not None:
        _write(default(o), out, default)
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _orig_key(o: dict, k: str) -> Any:
    for key in o:
        if str(key) == k:
            return key
    raise KeyError(k)
