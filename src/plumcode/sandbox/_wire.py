"""Framing and the value codec on the candidate -> judge channel.

The judge must never run candidate code nor trust candidate-made objects, so values returned by
a candidate are decoded with a restricted unpickler (only a whitelist of trusted classes can be
built) and then re-validated to be *exact* plain types. Everything the candidate returns that
is not plain data travels as an opaque handle id.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import io
import os
import pickle
import socket
import struct
from typing import Any

MAX_FRAME = 512 << 20
_HDR = struct.Struct("<Q")

SCALARS = frozenset({bool, int, float, str, bytes, type(None), complex})
CONTAINERS = frozenset({list, tuple, set, frozenset, dict, collections.Counter, collections.OrderedDict,
                        collections.defaultdict, collections.deque})
OTHER = frozenset({fractions.Fraction, decimal.Decimal, range})
PLAIN = SCALARS | CONTAINERS | OTHER
_DD_FACTORIES = (int, float, str, list, dict, set, tuple, bool, frozenset, type(None))
_LIST_ITER = type(iter([]))

_ALLOWED_GLOBALS = {
    ("collections", "Counter"): collections.Counter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "deque"): collections.deque,
    ("fractions", "Fraction"): fractions.Fraction,
    ("decimal", "Decimal"): decimal.Decimal,
    **{("builtins", t.__name__): t for t in (set, frozenset, complex, range, int, float, str, list, dict,
                                             tuple, bool, bytes)},
}


class ProtocolError(Exception):
    """The peer broke the wire protocol (or died): never a pass."""


# ---------------------------------------------------------------- framing
def send_frame(sock: socket.socket, data: bytes, fds: list[int] | tuple = ()) -> None:
    buf = _HDR.pack(len(data)) + data
    if fds:
        n = socket.send_fds(sock, [buf], list(fds))
        buf = buf[n:]
    if buf:
        sock.sendall(buf)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray(n)
    view, got = memoryview(out), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("peer closed the channel")
        got += k
    return bytes(out)


def recv_frame(sock: socket.socket, with_fds: bool = False) -> tuple[bytes, list[int]]:
    fds: list[int] = []
    if with_fds:
        hdr, fds, _flags, _addr = socket.recv_fds(sock, _HDR.size, 8)
        if not hdr:
            raise EOFError("peer closed the channel")
        if len(hdr) < _HDR.size:
            hdr += _recv_exact(sock, _HDR.size - len(hdr))
    else:
        hdr = _recv_exact(sock, _HDR.size)
    (n,) = _HDR.unpack(hdr)
    if n > MAX_FRAME:
        for fd in fds:
            os.close(fd)
        raise ProtocolError(f"frame of {n} bytes exceeds the limit")
    return _recv_exact(sock, n), fds


# ---------------------------------------------------------------- judge side decoding
class Handle:
    """An object that lives in the candidate process. Equality is identity, truth and ordering
    raise: a candidate object can never *claim* to equal an expected value."""

    __slots__ = ("_hid", "_conn", "__weakref__")

    def __init__(self, hid: int, conn: Any = None):
        self._hid, self._conn = hid, conn

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError("truth value of a candidate object is undefined here")

    def _no_order(self, other: object) -> bool:
        raise TypeError("candidate objects cannot be ordered")

    __lt__ = __le__ = __gt__ = __ge__ = _no_order

    def __repr__(self) -> str:
        if self._conn is not None:
            try:
                return self._conn.remote("repr", self._hid)
            except Exception:  # noqa: BLE001
                pass
        return f"<candidate object #{self._hid}>"

    def __str__(self) -> str:
        if self._conn is None:
            return repr(self)
        return self._conn.remote("str", self._hid)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self._conn is None:
            raise AttributeError(name)
        return self._conn.remote("getattr", self._hid, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._conn is None:
            raise TypeError("candidate object is not callable here")
        return self._conn.remote("call", self._hid, args, kwargs)

    def __len__(self) -> int:
        return self._conn.remote("len", self._hid)

    def __iter__(self):
        return iter(self._conn.remote("iter", self._hid))

    def __getitem__(self, key: Any) -> Any:
        return self._conn.remote("getitem", self._hid, key)

    def __contains__(self, item: Any) -> bool:
        return self._conn.remote("contains", self._hid, item)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, conn: Any):
        super().__init__(io.BytesIO(data))
        self._conn = conn

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden class {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is tuple and len(pid) == 2:
            tag, v = pid
            if tag == "h" and type(v) is int:
                return Handle(v, self._conn)
            if tag == "it" and type(v) is list:
                return iter(v)
        raise pickle.UnpicklingError("bad persistent id")


def validate(v: Any, depth: int = 0) -> None:
    """Raise TypeError unless ``v`` is built only from exact trusted types (and handles)."""
    if depth > 200:
        raise TypeError("value nested too deeply")
    t = type(v)
    if t in SCALARS or t is Handle or t in OTHER:
        if t is fractions.Fraction and (type(v.numerator) is not int or type(v.denominator) is not int):
            raise TypeError("malformed Fraction")
        return
    if t is _LIST_ITER:
        return  # built by persistent_load from a validated-below list only
    if t in CONTAINERS:
        if t is collections.defaultdict and v.default_factory not in _DD_FACTORIES and \
                type(v.default_factory) is not Handle:
            raise TypeError("defaultdict with an untrusted factory")
        items = list(v.items()) if isinstance(v, dict) else v
        if isinstance(v, dict):
            for k, x in items:
                validate(k, depth + 1)
                validate(x, depth + 1)
            return
        kinds = set(map(type, items))
        if kinds <= SCALARS:
            return
        for x in items:
            validate(x, depth + 1)
        return
    raise TypeError(f"untrusted value of type {t.__name__}")


def loads_value(data: bytes, conn: Any = None) -> Any:
    v = _RestrictedUnpickler(data, conn).load()
    validate(v)
    return v


# ---------------------------------------------------------------- candidate side encoding
def is_plain(v: Any, depth: int = 0) -> bool:
    t = type(v)
    if t in SCALARS or t in OTHER:
        return True
    if depth > 100 or t not in CONTAINERS:
        return False
    if t is collections.defaultdict and v.default_factory not in _DD_FACTORIES:
        return False
    if isinstance(v, dict):
        return all(is_plain(k, depth + 1) and is_plain(x, depth + 1) for k, x in v.items())
    kinds = set(map(type, v))
    if kinds <= SCALARS:
        return True
    return all(is_plain(x, depth + 1) for x in v)
