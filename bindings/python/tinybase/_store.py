"""Store, MergeableStore, listeners and event queues over the C API."""

from __future__ import annotations

import itertools
import json
import math
import threading
import traceback
import warnings
import weakref
from ctypes import byref, c_bool, c_size_t, c_uint32, c_uint64, c_void_p, POINTER, string_at
from enum import IntEnum
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from . import _native
from ._errors import (
    CallbackErrorWarning,
    ClosedError,
    InvalidArgumentError,
    InvalidShapeError,
    InvalidValueError,
    error_from_status,
)
from ._handle import Closable, NativeHandle, hold_calls, unheld
from ._jsjson import js_dumps, js_key_order
from ._native import lib, tb_event, tb_value, tb_value_in

__all__ = [
    "ABSENT",
    "Absent",
    "Store",
    "MergeableStore",
    "Listener",
    "ListenerKind",
    "Event",
    "EventQueue",
    "Transaction",
    "set_callback_error_handler",
]

# A JSON-compatible Python value: what a cell or value holds.
CellValue = Union[str, int, float, bool, None, Dict[str, Any], List[Any]]
Json = Any
T = TypeVar("T")

UNDEFINED = "\ufffc"  # TinyBase's "undefined" in JSON (deletions in changes)


class Absent:
    """The type of :data:`ABSENT`, the marker for "no cell/value here" (as opposed to ``None``,
    which is a JSON null stored in the store). Falsy; a singleton."""

    _instance: Optional["Absent"] = None

    def __new__(cls) -> "Absent":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "tinybase.ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
"""Returned by :meth:`Store.get_cell` / :meth:`Store.get_value` (and passed to cell and value
listeners) when there is no cell or value; in changes (``apply_changes``,
``get_transaction_changes``) it marks a deletion, as TinyBase's ``undefined`` does."""


class ListenerKind(IntEnum):
    """The kinds of listener (the C API's TB_LISTENER_* constants)."""

    HAS_TABLES = 0
    TABLES = 1
    TABLE_IDS = 2
    HAS_TABLE = 3
    TABLE = 4
    TABLE_CELL_IDS = 5
    HAS_TABLE_CELL = 6
    ROW_COUNT = 7
    ROW_IDS = 8
    HAS_ROW = 9
    ROW = 10
    CELL_IDS = 11
    HAS_CELL = 12
    CELL = 13
    HAS_VALUES = 14
    VALUES = 15
    VALUE_IDS = 16
    HAS_VALUE = 17
    VALUE = 18
    START_TRANSACTION = 19
    WILL_FINISH_TRANSACTION = 20
    DID_FINISH_TRANSACTION = 21


# Which event fields hold the ids of each kind, in TinyBase's argument order.
_K = ListenerKind
_ID_FIELDS: Dict[int, Tuple[str, ...]] = {k: () for k in _K}
for _k in (_K.HAS_TABLE, _K.TABLE, _K.TABLE_CELL_IDS, _K.ROW_COUNT, _K.ROW_IDS):
    _ID_FIELDS[_k] = ("table_id",)
_ID_FIELDS[_K.HAS_TABLE_CELL] = ("table_id", "cell_id")
for _k in (_K.HAS_ROW, _K.ROW, _K.CELL_IDS):
    _ID_FIELDS[_k] = ("table_id", "row_id")
for _k in (_K.HAS_CELL, _K.CELL):
    _ID_FIELDS[_k] = ("table_id", "row_id", "cell_id")
for _k in (_K.HAS_VALUE, _K.VALUE):
    _ID_FIELDS[_k] = ("value_id",)
_HAS_KINDS = frozenset(
    (_K.HAS_TABLES, _K.HAS_TABLE, _K.HAS_TABLE_CELL, _K.HAS_ROW, _K.HAS_CELL, _K.HAS_VALUES, _K.HAS_VALUE)
)
_ID_COUNT = {k: len(v) for k, v in _ID_FIELDS.items()}


# -- conversions ------------------------------------------------------------------------------


def _raise(status: int) -> None:
    raise error_from_status(status)


def _id(s: Any, what: str = "id") -> bytes:
    """Encodes an id (a str) for the C API."""
    if type(s) is not str:
        if isinstance(s, str):
            s = str(s)
        else:
            raise TypeError(f"{what} must be a str, not {type(s).__name__}")
    b = s.encode("utf-8", "surrogatepass")  # lone surrogates: the library says INVALID_UTF8
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} {s!r} contains a NUL character, which the C API cannot carry")
    return b


def _opt_id(s: Optional[str], what: str = "id") -> Optional[bytes]:
    return None if s is None else _id(s, what)


def _text(s: Any, what: str = "json") -> bytes:
    if isinstance(s, (bytes, bytearray)):
        b = bytes(s)
    elif isinstance(s, str):
        b = s.encode("utf-8", "surrogatepass")
    else:
        raise TypeError(f"{what} must be str (JSON text), not {type(s).__name__}")
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return b


def _json_default(o: Any) -> Any:
    if o is ABSENT:
        return UNDEFINED
    if isinstance(o, tuple):
        return list(o)
    raise InvalidValueError(f"cannot store a value of type {type(o).__name__}")


def _dumps(obj: Any) -> bytes:
    """Python value -> compact JSON bytes (ABSENT -> "\\uFFFC"); NaN/inf and unsupported types
    raise InvalidValueError."""
    try:
        s = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default)
    except InvalidValueError:
        raise
    except ValueError as e:  # NaN / infinity / circular reference
        raise InvalidValueError(str(e)) from None
    except TypeError as e:  # e.g. non-str dict keys that json cannot coerce
        raise InvalidValueError(str(e)) from None
    return s.encode("ascii")


def _wire_cell(v: Any) -> Any:
    """A decoded cell in wire form (objects and arrays as U+FFFD-prefixed JSON.stringify text),
    validated as the typed Rust API validates it."""
    t = type(v)
    if t is str:
        if v == UNDEFINED or v.startswith("\ufffd"):
            raise InvalidValueError("strings equal to U+FFFC or starting with U+FFFD are reserved")
        return v
    if v is None or t is bool:
        return v
    if t is int or t is float or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        try:
            f = float(v)
        except OverflowError:
            raise InvalidValueError(f"number {v} does not fit in a double") from None
        if not math.isfinite(f):
            raise InvalidValueError(f"number {v} is not finite")
        return f
    if isinstance(v, (dict, list, tuple)):
        _dumps(v)  # validates (NaN, unsupported types)
        return "\ufffd" + js_dumps(v)
    if v is ABSENT:
        raise InvalidValueError("ABSENT (undefined) is not a cell")
    raise InvalidValueError(f"cannot store a value of type {type(v).__name__}")


def _wire_row(row: Any, what: str = "row") -> str:
    if not isinstance(row, dict):
        raise InvalidShapeError(f"a {what} must be a dict, not {type(row).__name__}")
    if not row:
        raise InvalidShapeError(f"a {what} must not be empty")
    return js_dumps({k: _wire_cell(v) for k, v in row.items()})


def _wire_tables(tables: Any) -> bytes:
    if not isinstance(tables, dict):
        raise InvalidShapeError(f"tables must be a dict, not {type(tables).__name__}")
    if not tables:
        raise InvalidShapeError("a tables must not be empty")
    parts = []
    for tid, table in _js_items(tables):
        if not isinstance(table, dict):
            raise InvalidShapeError(f"a table must be a dict, not {type(table).__name__}")
        if not table:
            raise InvalidShapeError("a table must not be empty")
        rows = [js_dumps(str(rid)) + ":" + _wire_row(row) for rid, row in _js_items(table)]
        parts.append(js_dumps(str(tid)) + ":{" + ",".join(rows) + "}")
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


def _js_items(d: Dict[Any, Any]) -> List[Tuple[Any, Any]]:
    keys = js_key_order([str(k) for k in d])
    m = {str(k): v for k, v in d.items()}
    return [(k, m[k]) for k in keys]


def _restore_absent(obj: Any) -> Any:
    """Replaces every "\\uFFFC" string (TinyBase's undefined) by ABSENT, recursively."""
    if isinstance(obj, dict):
        return {k: _restore_absent(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_absent(v) for v in obj]
    if obj == UNDEFINED:
        return ABSENT
    return obj


def _number(x: float) -> Union[int, float]:
    # As the library's JSON output would parse: integral numbers below 1e21 (those JavaScript
    # writes without an exponent) come back as int, everything else as float.
    if x.is_integer() and -1e21 < x < 1e21:
        return int(x)
    return x


def _from_value(v: tb_value) -> Any:
    kind = v.kind
    if kind == 4:
        return string_at(v.string, v.length).decode("utf-8", "surrogatepass")
    if kind == 3:
        return _number(v.number)
    if kind == 0:
        return ABSENT
    if kind == 1:
        return None
    if kind == 2:
        return bool(v.boolean)
    if kind == 5:
        return json.loads(string_at(v.string, v.length).decode("utf-8"))
    raise InvalidValueError(f"unknown tb_value kind {kind}")


def _take_string(out: c_void_p) -> str:
    ptr = out.value
    if not ptr:
        return ""
    try:
        return string_at(ptr).decode("utf-8", "surrogatepass")
    finally:
        lib.tb_string_free(ptr)


def _call_str(fn: Any, *args: Any) -> str:
    out = c_void_p()
    st = fn(*args, byref(out))
    if st:
        _raise(st)
    return _take_string(out)


def _check(st: int) -> None:
    if st:
        _raise(st)


# -- callback plumbing ------------------------------------------------------------------------
#
# Native code receives one of the module-level trampolines below (created once, alive as long as
# the module) and an integer key as user_data. The key maps to the Python callable in
# _callbacks; the entry is added when the callback is registered and removed by the C library's
# release(user_data) call, which happens exactly once when native code can no longer call it
# (listener removed, store or queue destroyed). So every Python callable stays referenced exactly
# as long as native code may call it, and no ctypes function pointer can dangle.

_callbacks: Dict[int, Any] = {}
_keys = itertools.count(1)
_error_handler: Optional[Callable[[BaseException, Any], None]] = None


def set_callback_error_handler(handler: Optional[Callable[[BaseException, Any], None]]) -> None:
    """Sets what happens when a Python callback (listener, clock, notify) raises.

    Exceptions never cross into native code. By default each one is reported with a
    :class:`CallbackErrorWarning` (which includes the traceback); ``handler(exc, callback)``
    replaces that. ``None`` restores the default.
    """
    global _error_handler
    _error_handler = handler


def _report(exc: BaseException, callback: Any) -> None:
    try:
        if _error_handler is not None:
            _error_handler(exc, callback)
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        warnings.warn(
            f"exception in tinybase callback {callback!r} (ignored; it cannot propagate into native code):\n{tb}",
            CallbackErrorWarning,
            stacklevel=2,
        )
    except BaseException:  # never let anything escape into native code
        pass


def _register(obj: Any) -> int:
    key = next(_keys)
    _callbacks[key] = obj
    return key


@_native.tb_release_fn
def _release_trampoline(user_data: Optional[int]) -> None:
    try:
        _callbacks.pop(user_data or 0, None)
    except BaseException:
        pass


class _ListenerRecord:
    __slots__ = ("callback", "store_ref", "__weakref__")

    def __init__(self, callback: Callable[..., Any], store: "Store") -> None:
        self.callback = callback
        self.store_ref = weakref.ref(store)


def _event_args(ev: tb_event) -> Tuple[Any, ...]:
    kind = ev.kind
    args: List[Any] = [getattr(ev, f).decode("utf-8", "surrogatepass") if getattr(ev, f) is not None else None for f in _ID_FIELDS.get(kind, ())]
    if kind == 13 or kind == 18:
        args.append(_from_value(ev.new_value))
        args.append(_from_value(ev.old_value))
    elif kind in _HAS_KINDS:
        args.append(bool(ev.has))
    elif kind == 7:
        args.append(int(ev.row_count))
    return tuple(args)


@_native.tb_listener_fn
def _listener_trampoline(user_data: Optional[int], store_ptr: Optional[int], event_ptr: Any) -> None:
    rec = None
    try:
        rec = _callbacks.get(user_data or 0)
        if rec is None:
            return
        args = _event_args(event_ptr.contents)
        store = rec.store_ref()
        if store is None:  # the Python object is being collected: give a borrowed view
            store = Store._borrowed(store_ptr)
        rec.callback(store, *args)
    except BaseException as e:  # noqa: BLE001 - nothing may cross into native code
        _report(e, rec.callback if rec is not None else None)


@_native.tb_now_fn
def _now_trampoline(user_data: Optional[int]) -> float:
    fn = None
    try:
        fn = _callbacks.get(user_data or 0)
        v = float(fn())  # type: ignore[misc]
        if math.isfinite(v):
            return v
        raise InvalidValueError(f"get_now returned {v!r}")
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)
        import time

        return time.time() * 1000.0


@_native.tb_notify_fn
def _notify_trampoline(user_data: Optional[int]) -> None:
    fn = None
    try:
        fn = _callbacks.get(user_data or 0)
        if fn is not None:
            fn()
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)


# -- listeners and events -----------------------------------------------------------------------


class Listener:
    """A registered listener. ``id`` is the library's listener id; :meth:`remove` unregisters it
    (synchronously: afterwards the callback is never called again). Usable as a context
    manager that removes it on exit."""

    __slots__ = ("_store", "id", "kind", "__weakref__")

    def __init__(self, store: "Store", listener_id: int, kind: ListenerKind) -> None:
        self._store: Optional[Store] = store
        self.id = listener_id
        self.kind = kind

    @property
    def active(self) -> bool:
        """False once removed (or once its store was closed)."""
        return self._store is not None and self._store._ptr is not None

    def remove(self) -> None:
        """Removes the listener (idempotent; a no-op when the store is closed). Blocks until
        calls of it in flight on other threads return, except when called from inside a
        listener callback or a transaction (then it does not wait; the listener is never
        called again after those calls). Removes only this registration: ids are never reused."""
        store, self._store = self._store, None
        if store is not None and store._ptr is not None:
            store.del_listener(self.id)

    def call(self) -> None:
        """Calls the listener now (TinyBase's callListener)."""
        if self._store is not None:
            self._store.call_listener(self.id)

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<tinybase.Listener id={self.id} kind={self.kind.name}{'' if self.active else ' removed'}>"


class Event:
    """An event taken from an :class:`EventQueue` (a copy owned by Python).

    ``ids`` holds the ids TinyBase would pass to a listener of this kind; ``args`` the full
    argument tuple a callback of this kind receives after the store (ids, then new/old value,
    ``has`` or ``row_count``).
    """

    __slots__ = ("kind", "listener_id", "table_id", "row_id", "cell_id", "value_id", "new_value", "old_value", "has", "row_count", "args")

    def __init__(self, ev: tb_event) -> None:
        self.kind = ListenerKind(ev.kind)
        self.listener_id: int = int(ev.listener_id)
        dec = lambda b: None if b is None else b.decode("utf-8", "surrogatepass")  # noqa: E731
        self.table_id: Optional[str] = dec(ev.table_id)
        self.row_id: Optional[str] = dec(ev.row_id)
        self.cell_id: Optional[str] = dec(ev.cell_id)
        self.value_id: Optional[str] = dec(ev.value_id)
        self.new_value: Any = _from_value(ev.new_value)
        self.old_value: Any = _from_value(ev.old_value)
        self.has: bool = bool(ev.has)
        self.row_count: int = int(ev.row_count)
        self.args: Tuple[Any, ...] = _event_args(ev)

    @property
    def ids(self) -> Tuple[Optional[str], ...]:
        return self.args[: _ID_COUNT[self.kind]]

    def __repr__(self) -> str:
        return f"<tinybase.Event {self.kind.name} listener={self.listener_id} args={self.args!r}>"


@hold_calls
class EventQueue(Closable):
    """A queue of listener events for buffered delivery: listeners added with
    :meth:`Store.add_buffered_listener` queue events here instead of calling back, and the host
    drains them on a thread of its choosing with :meth:`poll` / :meth:`wait`.

    ``notify``, if given, is called (on the writing thread) whenever the queue goes from empty to
    non-empty. Close with :meth:`close` (or use as a context manager).
    """

    def __init__(self, notify: Optional[Callable[[], None]] = None) -> None:
        out = c_void_p()
        if notify is not None:
            if not callable(notify):
                raise TypeError("notify must be callable")
            key = _register(notify)
            st = lib.tb_event_queue_new(_notify_trampoline, key, _release_trampoline, byref(out))
            if st:
                _callbacks.pop(key, None)  # not taken over on failure
                _raise(st)
        else:
            _check(lib.tb_event_queue_new(_native.tb_notify_fn(), None, _native.tb_release_fn(), byref(out)))
        self._ptr: Optional[int] = out.value
        self._h = NativeHandle(out.value, lib.tb_event_queue_free, "event queue")

    def _p(self) -> int:
        p = self._ptr
        if p is None:
            raise ClosedError("event queue is closed")
        return p

    def _take(self, ptr: Any) -> Optional[Event]:
        if not ptr:
            return None
        try:
            return Event(ptr.contents)
        finally:
            lib.tb_event_free(ptr)

    def poll(self) -> Optional[Event]:
        """The oldest queued event, or None when the queue is empty (does not wait)."""
        out = POINTER(tb_event)()
        _check(lib.tb_event_queue_poll(self._p(), byref(out)))
        return self._take(out)

    def wait(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The oldest event, waiting up to ``timeout`` seconds (None: wait as long as needed);
        None on timeout or when the queue is closed. The GIL is released while waiting."""
        out = POINTER(tb_event)()
        if timeout is None:
            while True:
                _check(lib.tb_event_queue_wait(self._p(), 1000, byref(out)))
                if out:
                    return self._take(out)
        ms = max(0, min(int(timeout * 1000), 0xFFFFFFFF))
        _check(lib.tb_event_queue_wait(self._p(), ms, byref(out)))
        return self._take(out)

    def drain(self) -> List[Event]:
        """Every event queued now, oldest first."""
        events = []
        while True:
            e = self.poll()
            if e is None:
                return events
            events.append(e)

    def __len__(self) -> int:
        out = c_size_t()
        _check(lib.tb_event_queue_len(self._p(), byref(out)))
        return out.value

    def close(self) -> None:
        """Closes the queue (queued events are discarded). Idempotent. Later calls raise
        :class:`ClosedError`; calls in flight on other threads (a :meth:`wait`) end first: the
        native queue is freed when the last of them returns."""
        self._ptr = None
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    @property
    def closed(self) -> bool:
        return self._ptr is None


# -- transactions -----------------------------------------------------------------------------


class Transaction:
    """Context manager returned by :meth:`Store.transaction`: starts a transaction on enter,
    commits on a normal exit, rolls back when the block raises (the exception propagates)."""

    __slots__ = ("_store", "_do_rollback")

    def __init__(self, store: "Store", do_rollback: Optional[Callable[["Store"], bool]] = None) -> None:
        self._store = store
        self._do_rollback = do_rollback

    def __enter__(self) -> "Store":
        self._store.start_transaction()
        return self._store

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        rollback = exc_type is not None
        if not rollback and self._do_rollback is not None:
            try:
                rollback = bool(self._do_rollback(self._store))
            except BaseException:
                self._store.finish_transaction(rollback=True)
                raise
        self._store.finish_transaction(rollback=rollback)


# -- the stores -------------------------------------------------------------------------------

@hold_calls
class Store(Closable):
    """A TinyBase Store (``createStore()``): tables of rows of cells, plus keyed values.

    Methods are TinyBase's in snake_case. Cells and values are Python ``str``, ``int``/``float``
    (finite), ``bool``, ``None`` (JSON null), ``dict`` or ``list`` (TinyBase 10 object and array
    cells). A missing cell or value reads as :data:`ABSENT` (or the ``default`` you pass).
    Thread-safe: a store may be used from any number of threads. Close with :meth:`close` (or a
    ``with`` block); it is also freed when garbage-collected.
    """

    _ptr: Optional[int]

    def __init__(self) -> None:
        out = c_void_p()
        _check(lib.tb_store_new(byref(out)))
        self._ptr = out.value
        self._owned = True
        self._h = NativeHandle(out.value, lib.tb_store_free, "store")

    @classmethod
    def _borrowed(cls, ptr: Optional[int]) -> "Store":
        s = cls.__new__(cls)
        s._ptr = ptr
        s._owned = False
        s._h = NativeHandle(ptr, None, "store")  # type: ignore[arg-type]
        return s

    # ---- lifetime ----

    def close(self) -> None:
        """Releases this handle (idempotent). Later calls raise :class:`ClosedError`. Calls in
        flight on other threads (or on this one, when closing from inside a callback) finish
        first: the native handle is freed when the last of them returns, never under one. When it
        was the last reference to the store, the store's listeners are removed and their
        callbacks released."""
        self._ptr = None
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _p(self) -> int:
        p = self._ptr
        if p is None:
            raise ClosedError("store is closed")
        return p

    def clone(self) -> "Store":
        """Another handle to the same store (shared; each handle is closed separately)."""
        out = c_void_p()
        _check(lib.tb_store_clone(self._p(), byref(out)))
        s = Store.__new__(Store)
        s._ptr = out.value
        s._owned = True
        s._h = NativeHandle(out.value, lib.tb_store_free, "store")
        return s

    def __repr__(self) -> str:
        return f"<tinybase.{type(self).__name__}{' closed' if self._ptr is None else ''}>"

    # ---- getters: tables ----

    def get_tables(self) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """getTables: ``{table_id: {row_id: {cell_id: cell}}}``."""
        return self.get_content()[0]

    def get_table_ids(self) -> List[str]:
        return json.loads(_call_str(lib.tb_store_get_table_ids_json, self._p()))

    def get_table(self, table_id: str) -> Dict[str, Dict[str, Any]]:
        """getTable: ``{row_id: {cell_id: cell}}`` (``{}`` when absent)."""
        return json.loads(_call_str(lib.tb_store_get_table_json, self._p(), _id(table_id)))

    def get_table_cell_ids(self, table_id: str) -> List[str]:
        return json.loads(_call_str(lib.tb_store_get_table_cell_ids_json, self._p(), _id(table_id)))

    def get_row_count(self, table_id: str) -> int:
        out = c_size_t()
        _check(lib.tb_store_get_row_count(self._p(), _id(table_id), byref(out)))
        return out.value

    def get_row_ids(self, table_id: str) -> List[str]:
        return json.loads(_call_str(lib.tb_store_get_row_ids_json, self._p(), _id(table_id)))

    def get_row(self, table_id: str, row_id: str) -> Dict[str, Any]:
        """getRow: ``{cell_id: cell}`` (``{}`` when absent)."""
        return json.loads(_call_str(lib.tb_store_get_row_json, self._p(), _id(table_id), _id(row_id)))

    def get_cell_ids(self, table_id: str, row_id: str) -> List[str]:
        return json.loads(_call_str(lib.tb_store_get_cell_ids_json, self._p(), _id(table_id), _id(row_id)))

    def get_cell(self, table_id: str, row_id: str, cell_id: str, default: Any = ABSENT) -> Any:
        """getCell: the cell, or ``default`` (:data:`ABSENT` unless given) when there is none.
        ``None`` is a stored JSON null, never "absent" (unless you pass ``default=None``)."""
        v = tb_value()
        st = lib.tb_store_get_cell(self._p(), _id(table_id), _id(row_id), _id(cell_id), byref(v))
        if st:
            _raise(st)
        try:
            r = _from_value(v)
        finally:
            if v.owned:
                lib.tb_value_free(byref(v))
        return default if r is ABSENT else r

    # ---- getters: values ----

    def get_values(self) -> Dict[str, Any]:
        """getValues: ``{value_id: value}``."""
        return self.get_content()[1]

    def get_value_ids(self) -> List[str]:
        return json.loads(_call_str(lib.tb_store_get_value_ids_json, self._p()))

    def get_value(self, value_id: str, default: Any = ABSENT) -> Any:
        """getValue: the value, or ``default`` (:data:`ABSENT` unless given)."""
        v = tb_value()
        _check(lib.tb_store_get_value(self._p(), _id(value_id), byref(v)))
        try:
            r = _from_value(v)
        finally:
            if v.owned:
                lib.tb_value_free(byref(v))
        return default if r is ABSENT else r

    def get_content(self) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """getContent: ``(tables, values)``."""
        tables, values = json.loads(self.get_content_json())
        return tables, values

    # ---- has ----

    def _bool(self, fn: Any, *args: Any) -> bool:
        out = c_bool()
        _check(fn(self._p(), *args, byref(out)))
        return out.value

    def has_tables(self) -> bool:
        return self._bool(lib.tb_store_has_tables)

    def has_table(self, table_id: str) -> bool:
        return self._bool(lib.tb_store_has_table, _id(table_id))

    def has_table_cell(self, table_id: str, cell_id: str) -> bool:
        return self._bool(lib.tb_store_has_table_cell, _id(table_id), _id(cell_id))

    def has_row(self, table_id: str, row_id: str) -> bool:
        return self._bool(lib.tb_store_has_row, _id(table_id), _id(row_id))

    def has_cell(self, table_id: str, row_id: str, cell_id: str) -> bool:
        return self._bool(lib.tb_store_has_cell, _id(table_id), _id(row_id), _id(cell_id))

    def has_values(self) -> bool:
        return self._bool(lib.tb_store_has_values)

    def has_value(self, value_id: str) -> bool:
        return self._bool(lib.tb_store_has_value, _id(value_id))

    # ---- setters ----

    def set_tables(self, tables: Dict[str, Dict[str, Dict[str, Any]]]) -> "Store":
        """setTables: replaces every table. As TinyBase's, empty tables, tables or rows are
        refused (:class:`InvalidShapeError`; use :meth:`del_tables`). Returns the store."""
        p = self._p()
        _check(lib.tb_store_set_tables_json(p, _wire_tables(tables)))
        return self

    def set_table(self, table_id: str, table: Dict[str, Dict[str, Any]]) -> "Store":
        _check(lib.tb_store_set_table_json(self._p(), _id(table_id), _dumps(table)))
        return self

    def set_row(self, table_id: str, row_id: str, row: Dict[str, Any]) -> "Store":
        _check(lib.tb_store_set_row_json(self._p(), _id(table_id), _id(row_id), _dumps(row)))
        return self

    def set_partial_row(self, table_id: str, row_id: str, partial_row: Dict[str, Any]) -> "Store":
        _check(lib.tb_store_set_partial_row_json(self._p(), _id(table_id), _id(row_id), _dumps(partial_row)))
        return self

    def add_row(self, table_id: str, row: Dict[str, Any], reuse_row_ids: bool = True) -> str:
        """addRow: adds a row under a new id and returns the id. With ``reuse_row_ids`` (the
        default, as TinyBase's) ids of deleted rows are used first."""
        out = c_void_p()
        _check(lib.tb_store_add_row_json(self._p(), _id(table_id), _dumps(row), bool(reuse_row_ids), byref(out)))
        return _take_string(out)

    def set_cell(self, table_id: str, row_id: str, cell_id: str, cell: Any) -> "Store":
        """setCell. ``cell`` is a str, int/float (finite), bool, None, dict or list. (TinyBase's
        mapper-function form: pass ``cell`` as a callable taking the old cell.)"""
        p = self._ptr
        if p is None:
            raise ClosedError("store is closed")
        if type(cell) is str and type(table_id) is str and type(row_id) is str and type(cell_id) is str:
            # fast path (the common case): plain str ids and a str cell, no tb_value needed
            try:
                t, r, c, b = table_id.encode(), row_id.encode(), cell_id.encode(), cell.encode()
            except UnicodeEncodeError:
                pass
            else:
                if b"\0" not in b"".join((t, r, c, b)):
                    st = _set_cell_string_fn(p, t, r, c, b)
                    if st:
                        _raise(st)
                    return self
        t, r, c = _id(table_id), _id(row_id), _id(cell_id)
        if callable(cell):
            cell = cell(self.get_cell(table_id, row_id, cell_id))
        st = _set(lib.tb_store_set_cell, lib.tb_store_set_cell_json, p, (t, r, c), cell)
        if st:
            _raise(st)
        return self

    def set_values(self, values: Dict[str, Any]) -> "Store":
        """setValues: replaces every value (``{}`` is refused as TinyBase refuses it: use
        :meth:`del_values`)."""
        p = self._p()
        _check(lib.tb_store_set_values_json(p, _wire_row(values, "values").encode("utf-8", "surrogatepass")))
        return self

    def set_partial_values(self, partial_values: Dict[str, Any]) -> "Store":
        _check(lib.tb_store_set_partial_values_json(self._p(), _dumps(partial_values)))
        return self

    def set_value(self, value_id: str, value: Any) -> "Store":
        """setValue (a callable ``value`` maps the old value)."""
        p = self._p()
        v = _id(value_id)
        if callable(value):
            value = value(self.get_value(value_id))
        st = _set(lib.tb_store_set_value, lib.tb_store_set_value_json, p, (v,), value)
        if st:
            _raise(st)
        return self

    def set_content(self, content: Union[Tuple[Any, Any], List[Any]]) -> "Store":
        """setContent with ``(tables, values)``."""
        _check(lib.tb_store_set_content_json(self._p(), _dumps(list(content))))
        return self

    def apply_changes(self, changes: List[Any]) -> "Store":
        """applyChanges with ``[tables, values, 1]``; :data:`ABSENT` (or a table/row of
        :data:`ABSENT`) deletes, as TinyBase's ``undefined``."""
        _check(lib.tb_store_apply_changes_json(self._p(), _dumps(changes)))
        return self

    # ---- deleters ----

    def del_tables(self) -> "Store":
        _check(lib.tb_store_del_tables(self._p()))
        return self

    def del_table(self, table_id: str) -> "Store":
        _check(lib.tb_store_del_table(self._p(), _id(table_id)))
        return self

    def del_row(self, table_id: str, row_id: str) -> "Store":
        _check(lib.tb_store_del_row(self._p(), _id(table_id), _id(row_id)))
        return self

    def del_cell(self, table_id: str, row_id: str, cell_id: str) -> "Store":
        _check(lib.tb_store_del_cell(self._p(), _id(table_id), _id(row_id), _id(cell_id)))
        return self

    def del_values(self) -> "Store":
        _check(lib.tb_store_del_values(self._p()))
        return self

    def del_value(self, value_id: str) -> "Store":
        _check(lib.tb_store_del_value(self._p(), _id(value_id)))
        return self

    # ---- JSON text (TinyBase's wire encoding) ----

    def get_json(self) -> str:
        """getJson: ``[tables, values]`` as JSON text (object/array cells in wire form)."""
        return _call_str(lib.tb_store_get_json, self._p())

    def get_tables_json(self) -> str:
        return _call_str(lib.tb_store_get_tables_json, self._p())

    def get_values_json(self) -> str:
        return _call_str(lib.tb_store_get_values_json, self._p())

    def get_content_json(self) -> str:
        """getContent as JSON text, object/array cells decoded (plain JSON)."""
        return _call_str(lib.tb_store_get_content_json, self._p())

    def set_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_set_json(self._p(), _text(json_text)))
        return self

    def set_tables_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_set_tables_json(self._p(), _text(json_text)))
        return self

    def set_values_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_set_values_json(self._p(), _text(json_text)))
        return self

    def set_content_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_set_content_json(self._p(), _text(json_text)))
        return self

    def set_table_json(self, table_id: str, json_text: str) -> "Store":
        _check(lib.tb_store_set_table_json(self._p(), _id(table_id), _text(json_text)))
        return self

    def set_row_json(self, table_id: str, row_id: str, json_text: str) -> "Store":
        _check(lib.tb_store_set_row_json(self._p(), _id(table_id), _id(row_id), _text(json_text)))
        return self

    def set_partial_row_json(self, table_id: str, row_id: str, json_text: str) -> "Store":
        _check(lib.tb_store_set_partial_row_json(self._p(), _id(table_id), _id(row_id), _text(json_text)))
        return self

    def set_partial_values_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_set_partial_values_json(self._p(), _text(json_text)))
        return self

    def add_row_json(self, table_id: str, json_text: str, reuse_row_ids: bool = True) -> str:
        out = c_void_p()
        _check(lib.tb_store_add_row_json(self._p(), _id(table_id), _text(json_text), bool(reuse_row_ids), byref(out)))
        return _take_string(out)

    def set_cell_json(self, table_id: str, row_id: str, cell_id: str, json_text: str) -> "Store":
        _check(lib.tb_store_set_cell_json(self._p(), _id(table_id), _id(row_id), _id(cell_id), _text(json_text)))
        return self

    def set_value_json(self, value_id: str, json_text: str) -> "Store":
        _check(lib.tb_store_set_value_json(self._p(), _id(value_id), _text(json_text)))
        return self

    def apply_changes_json(self, json_text: str) -> "Store":
        _check(lib.tb_store_apply_changes_json(self._p(), _text(json_text)))
        return self

    def get_transaction_changes_json(self) -> str:
        """getTransactionChanges as JSON text (``"\\uFFFC"`` for deletions)."""
        return _call_str(lib.tb_store_get_transaction_changes_json, self._p())

    def get_transaction_changes(self) -> List[Any]:
        """getTransactionChanges: ``[tables, values, 1]`` of the transaction open on this thread
        (or whose did-finish listeners are running), deletions as :data:`ABSENT`."""
        return _restore_absent(json.loads(self.get_transaction_changes_json()))

    # ---- transactions ----

    @overload
    def transaction(self) -> Transaction: ...

    @overload
    def transaction(self, actions: Callable[["Store"], T], do_rollback: Optional[Callable[["Store"], bool]] = None) -> T: ...

    def transaction(self, actions: Optional[Callable[["Store"], Any]] = None, do_rollback: Optional[Callable[["Store"], bool]] = None) -> Any:
        """A transaction: changes inside are atomic for other threads and listeners are called
        once, after it commits.

        ``with store.transaction(): ...`` commits at the end of the block and rolls back (then
        re-raises) when the block raises. ``store.transaction(fn)`` calls ``fn(store)`` inside a
        transaction and returns its result (rolled back if it raises, or if
        ``do_rollback(store)`` returns true). Nested transactions join the outer one.
        """
        if actions is None:
            return Transaction(self, do_rollback)
        with Transaction(self, do_rollback):
            return actions(self)

    def start_transaction(self) -> "Store":
        """startTransaction: must be finished with :meth:`finish_transaction` on the same thread;
        other threads wait for the store until then. A thread that ends with it still open has
        it rolled back as it exits (no listener called), so the store is not locked forever.
        The open transaction holds the handle: :meth:`close` frees it only once the
        transaction is finished."""
        p = self._p()
        self._h.enter()  # released by finish_transaction
        st = lib.tb_store_start_transaction(p)
        if st:
            self._h.leave()
            _raise(st)
        self._tx_view = p
        levels = self.__dict__.setdefault("_tx_levels", {})  # thread -> levels opened here
        me = threading.get_ident()
        levels[me] = levels.get(me, 0) + 1
        return self

    @unheld
    def finish_transaction(self, rollback: bool = False) -> "Store":
        """finishTransaction (rolls back when ``rollback``), then calls the listeners. Also
        after :meth:`close`, for a transaction this thread started before it. Raises
        :class:`InvalidStateError` when this thread has no started transaction open (e.g. from
        a transaction listener)."""
        levels = self.__dict__.get("_tx_levels", {})
        me = threading.get_ident()
        mine = levels.get(me, 0)
        p = self._ptr
        if p is None:
            if not mine:
                raise ClosedError("store is closed")
            p = self._tx_view  # kept alive by this thread's open transaction
        _check(lib.tb_store_finish_transaction(p, bool(rollback)))
        if mine:
            if mine == 1:
                del levels[me]
            else:
                levels[me] = mine - 1
            self._h.leave()
        return self

    # ---- listeners ----

    def add_listener(self, kind: Union[ListenerKind, int], ids: Tuple[Optional[str], ...], callback: Callable[..., Any]) -> Listener:
        """Adds a listener of any kind; ``ids`` are the ids the kind takes (None: any)."""
        if not callable(callback):
            raise TypeError("listener callback must be callable")
        kind = ListenerKind(kind)
        enc = [_opt_id(i) for i in ids[:3]] + [None] * (3 - min(len(ids), 3))
        key = _register(_ListenerRecord(callback, self))
        out = c_uint64()
        try:
            st = lib.tb_store_add_listener(self._p(), int(kind), enc[0], enc[1], enc[2], _listener_trampoline, key, _release_trampoline, byref(out))
        except BaseException:
            _callbacks.pop(key, None)
            raise
        if st:
            _callbacks.pop(key, None)  # on failure the library did not take user_data
            _raise(st)
        return Listener(self, out.value, kind)

    def add_buffered_listener(self, queue: EventQueue, kind: Union[ListenerKind, int], *ids: Optional[str]) -> Listener:
        """Adds a listener that queues :class:`Event` objects into ``queue`` instead of calling
        back (ids as :meth:`add_listener`, None: any). Removing it discards its queued events."""
        kind = ListenerKind(kind)
        enc = [_opt_id(i) for i in ids[:3]] + [None] * (3 - min(len(ids), 3))
        out = c_uint64()
        _check(lib.tb_store_add_buffered_listener(self._p(), queue._p(), int(kind), enc[0], enc[1], enc[2], byref(out)))
        return Listener(self, out.value, kind)

    def del_listener(self, listener_id: Union[int, Listener]) -> "Store":
        """delListener (synchronous; unknown ids are ignored)."""
        if isinstance(listener_id, Listener):
            listener_id.remove()
            return self
        _check(lib.tb_store_del_listener(self._p(), int(listener_id)))
        return self

    def call_listener(self, listener_id: Union[int, Listener]) -> "Store":
        """callListener: calls a listener now for everything its ids match."""
        lid = listener_id.id if isinstance(listener_id, Listener) else int(listener_id)
        _check(lib.tb_store_call_listener(self._p(), lid))
        return self

    def get_listener_count(self) -> int:
        out = c_size_t()
        _check(lib.tb_store_get_listener_count(self._p(), byref(out)))
        return out.value

    def add_has_tables_listener(self, listener: Callable[["Store", bool], Any]) -> Listener:
        """``listener(store, has_tables)``."""
        return self.add_listener(_K.HAS_TABLES, (), listener)

    def add_tables_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``."""
        return self.add_listener(_K.TABLES, (), listener)

    def add_table_ids_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``."""
        return self.add_listener(_K.TABLE_IDS, (), listener)

    def add_has_table_listener(self, table_id: Optional[str], listener: Callable[["Store", str, bool], Any]) -> Listener:
        """``listener(store, table_id, has_table)``; ``table_id=None``: any table."""
        return self.add_listener(_K.HAS_TABLE, (table_id,), listener)

    def add_table_listener(self, table_id: Optional[str], listener: Callable[["Store", str], Any]) -> Listener:
        """``listener(store, table_id)``."""
        return self.add_listener(_K.TABLE, (table_id,), listener)

    def add_table_cell_ids_listener(self, table_id: Optional[str], listener: Callable[["Store", str], Any]) -> Listener:
        """``listener(store, table_id)``."""
        return self.add_listener(_K.TABLE_CELL_IDS, (table_id,), listener)

    def add_has_table_cell_listener(self, table_id: Optional[str], cell_id: Optional[str], listener: Callable[["Store", str, str, bool], Any]) -> Listener:
        """``listener(store, table_id, cell_id, has_table_cell)``."""
        return self.add_listener(_K.HAS_TABLE_CELL, (table_id, cell_id), listener)

    def add_row_count_listener(self, table_id: Optional[str], listener: Callable[["Store", str, int], Any]) -> Listener:
        """``listener(store, table_id, row_count)``."""
        return self.add_listener(_K.ROW_COUNT, (table_id,), listener)

    def add_row_ids_listener(self, table_id: Optional[str], listener: Callable[["Store", str], Any]) -> Listener:
        """``listener(store, table_id)``."""
        return self.add_listener(_K.ROW_IDS, (table_id,), listener)

    def add_has_row_listener(self, table_id: Optional[str], row_id: Optional[str], listener: Callable[["Store", str, str, bool], Any]) -> Listener:
        """``listener(store, table_id, row_id, has_row)``."""
        return self.add_listener(_K.HAS_ROW, (table_id, row_id), listener)

    def add_row_listener(self, table_id: Optional[str], row_id: Optional[str], listener: Callable[["Store", str, str], Any]) -> Listener:
        """``listener(store, table_id, row_id)``."""
        return self.add_listener(_K.ROW, (table_id, row_id), listener)

    def add_cell_ids_listener(self, table_id: Optional[str], row_id: Optional[str], listener: Callable[["Store", str, str], Any]) -> Listener:
        """``listener(store, table_id, row_id)``."""
        return self.add_listener(_K.CELL_IDS, (table_id, row_id), listener)

    def add_has_cell_listener(self, table_id: Optional[str], row_id: Optional[str], cell_id: Optional[str], listener: Callable[["Store", str, str, str, bool], Any]) -> Listener:
        """``listener(store, table_id, row_id, cell_id, has_cell)``."""
        return self.add_listener(_K.HAS_CELL, (table_id, row_id, cell_id), listener)

    def add_cell_listener(self, table_id: Optional[str], row_id: Optional[str], cell_id: Optional[str], listener: Callable[["Store", str, str, str, Any, Any], Any]) -> Listener:
        """``listener(store, table_id, row_id, cell_id, new_cell, old_cell)``; a deleted or new
        cell is :data:`ABSENT` on the corresponding side."""
        return self.add_listener(_K.CELL, (table_id, row_id, cell_id), listener)

    def add_has_values_listener(self, listener: Callable[["Store", bool], Any]) -> Listener:
        """``listener(store, has_values)``."""
        return self.add_listener(_K.HAS_VALUES, (), listener)

    def add_values_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``."""
        return self.add_listener(_K.VALUES, (), listener)

    def add_value_ids_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``."""
        return self.add_listener(_K.VALUE_IDS, (), listener)

    def add_has_value_listener(self, value_id: Optional[str], listener: Callable[["Store", str, bool], Any]) -> Listener:
        """``listener(store, value_id, has_value)``."""
        return self.add_listener(_K.HAS_VALUE, (value_id,), listener)

    def add_value_listener(self, value_id: Optional[str], listener: Callable[["Store", str, Any, Any], Any]) -> Listener:
        """``listener(store, value_id, new_value, old_value)`` (:data:`ABSENT` when none)."""
        return self.add_listener(_K.VALUE, (value_id,), listener)

    def add_start_transaction_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``."""
        return self.add_listener(_K.START_TRANSACTION, (), listener)

    def add_will_finish_transaction_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)`` (inside the transaction)."""
        return self.add_listener(_K.WILL_FINISH_TRANSACTION, (), listener)

    def add_did_finish_transaction_listener(self, listener: Callable[["Store"], Any]) -> Listener:
        """``listener(store)``; :meth:`get_transaction_changes` works inside it."""
        return self.add_listener(_K.DID_FINISH_TRANSACTION, (), listener)


_set_cell_fn = lib.tb_store_set_cell
_set_cell_string_fn = lib.tb_store_set_cell_string


def _set(fn: Any, fn_json: Any, p: int, ids: Tuple[bytes, ...], value: Any) -> int:
    """Calls a typed setter (tb_store_set_cell / set_value) with a Python value."""
    t = type(value)
    if t is str:
        b = value.encode("utf-8", "surrogatepass")
        if b"\0" in b:  # a NUL cannot cross as a C string: send it as JSON text instead
            return fn_json(p, *ids, _dumps(value))
        return fn(p, *ids, byref(tb_value_in(4, False, 0.0, b)))
    if t is bool:
        return fn(p, *ids, byref(tb_value_in(2, value)))
    if t is int or t is float:
        try:
            num = float(value)
        except OverflowError:
            raise InvalidValueError(f"number {value} does not fit in a double") from None
        return fn(p, *ids, byref(tb_value_in(3, False, num)))
    if value is None:
        return fn(p, *ids, byref(tb_value_in(1)))
    if value is ABSENT:
        raise InvalidValueError("cannot set ABSENT: use del_cell / del_value")
    if isinstance(value, (dict, list, tuple)):
        return fn_json(p, *ids, _dumps(value))
    if isinstance(value, str):
        return _set(fn, fn_json, p, ids, str(value))
    if isinstance(value, bool):
        return _set(fn, fn_json, p, ids, bool(value))
    if isinstance(value, (int, float)):
        return _set(fn, fn_json, p, ids, float(value))
    raise InvalidValueError(f"cannot store a value of type {type(value).__name__}: use str, int, float, bool, None, dict or list")


@hold_calls
class MergeableStore(Store):
    """A TinyBase MergeableStore (``createMergeableStore(uniqueId, getNow)``): a :class:`Store`
    whose every cell and value carries an HLC stamp, so replicas converge when they exchange
    content or changes.

    ``unique_id`` fixes the HLC client id (give every replica its own; None picks a random one).
    ``get_now`` is the clock: a callable returning milliseconds since the epoch as a float (as
    JavaScript's ``Date.now()``); it is called with the store's lock held, from whichever thread
    writes the store, and must not call into tinybase. None uses the system clock.

    Two JSON forms exist: the *wire* form (object/array cells as U+FFFD-prefixed strings: what a
    synchronizer sends and a file holds) and the *decoded* form (plain JSON). The ``*_json``
    methods use the wire form unless ``decoded=True``; the methods without ``_json`` take and
    return decoded Python objects.
    """

    def __init__(self, unique_id: Optional[str] = None, get_now: Optional[Callable[[], float]] = None) -> None:
        uid = _opt_id(unique_id, "unique_id")
        out = c_void_p()
        if get_now is None:
            _check(lib.tb_mergeable_store_new(uid, byref(out)))
        else:
            if not callable(get_now):
                raise TypeError("get_now must be callable")
            key = _register(get_now)
            st = lib.tb_mergeable_store_new_with_clock(uid, _now_trampoline, key, _release_trampoline, byref(out))
            if st:
                _callbacks.pop(key, None)  # not taken over on failure
                _raise(st)
        self._ms: Optional[int] = out.value
        self._ptr = lib.tb_mergeable_store_as_store(out.value)
        self._owned = True
        self._h = NativeHandle(out.value, lib.tb_mergeable_store_free, "store")

    def close(self) -> None:
        self._ms = None
        super().close()

    def _m(self) -> int:
        p = self._ms
        if p is None:
            raise ClosedError("store is closed")
        return p

    def clone(self) -> "MergeableStore":
        """Another handle to the same mergeable store."""
        out = c_void_p()
        _check(lib.tb_mergeable_store_clone(self._m(), byref(out)))
        s = MergeableStore.__new__(MergeableStore)
        s._ms = out.value
        s._ptr = lib.tb_mergeable_store_as_store(out.value)
        s._owned = True
        s._h = NativeHandle(out.value, lib.tb_mergeable_store_free, "store")
        return s

    # ---- mergeable content ----

    def get_mergeable_content(self) -> List[Any]:
        """getMergeableContent, decoded: ``[[tables, hlc, hash], [values, hlc, hash]]``."""
        return json.loads(self.get_mergeable_content_json(decoded=True))

    def get_mergeable_content_json(self, decoded: bool = False) -> str:
        """getMergeableContent as JSON text, in wire form (what a synchronizer sends and a file
        holds) unless ``decoded``."""
        fn = lib.tb_mergeable_store_get_mergeable_content_json if decoded else lib.tb_mergeable_store_get_encoded_mergeable_content_json
        return _call_str(fn, self._m())

    def set_mergeable_content(self, content: List[Any]) -> "MergeableStore":
        """setMergeableContent with decoded content (as :meth:`get_mergeable_content` gives)."""
        _check(lib.tb_mergeable_store_set_decoded_mergeable_content_json(self._m(), _dumps(content)))
        return self

    def set_mergeable_content_json(self, json_text: str, decoded: bool = False) -> "MergeableStore":
        """setMergeableContent with wire-form JSON text (``decoded=True``: decoded form)."""
        fn = lib.tb_mergeable_store_set_decoded_mergeable_content_json if decoded else lib.tb_mergeable_store_set_mergeable_content_json
        _check(fn(self._m(), _text(json_text)))
        return self

    def apply_mergeable_changes(self, changes: List[Any]) -> "MergeableStore":
        """applyMergeableChanges with decoded changes or content (Python objects)."""
        _check(lib.tb_mergeable_store_apply_decoded_mergeable_changes_json(self._m(), _dumps(changes)))
        return self

    def apply_mergeable_changes_json(self, json_text: str, decoded: bool = False) -> "MergeableStore":
        """applyMergeableChanges with wire-form JSON text (mergeable changes or content), all or
        nothing. ``decoded=True``: the text is in decoded form."""
        fn = lib.tb_mergeable_store_apply_decoded_mergeable_changes_json if decoded else lib.tb_mergeable_store_apply_mergeable_changes_json
        _check(fn(self._m(), _text(json_text)))
        return self

    def get_transaction_mergeable_changes(self, with_hashes: bool = False) -> List[Any]:
        """getTransactionMergeableChanges, decoded, for the transaction open on this thread (or
        whose did-finish listeners are running)."""
        return json.loads(self.get_transaction_mergeable_changes_json(with_hashes, decoded=True))

    def get_transaction_mergeable_changes_json(self, with_hashes: bool = False, decoded: bool = False) -> str:
        """getTransactionMergeableChanges as JSON text, in wire form (the body of a sync
        message; apply it elsewhere with :meth:`apply_mergeable_changes_json`) unless
        ``decoded``."""
        fn = lib.tb_mergeable_store_get_transaction_mergeable_changes_json if decoded else lib.tb_mergeable_store_get_encoded_transaction_mergeable_changes_json
        return _call_str(fn, self._m(), bool(with_hashes))

    def set_default_content(self, content: Union[Tuple[Any, Any], List[Any]]) -> "MergeableStore":
        """setDefaultContent with ``(tables, values)``: set with empty HLCs, only where nothing
        is stamped yet."""
        _check(lib.tb_mergeable_store_set_default_content_json(self._m(), _dumps(list(content))))
        return self

    def set_default_content_json(self, json_text: str) -> "MergeableStore":
        _check(lib.tb_mergeable_store_set_default_content_json(self._m(), _text(json_text)))
        return self

    def merge(self, other: "MergeableStore") -> "MergeableStore":
        """merge: both stores apply each other's full content."""
        if not isinstance(other, MergeableStore):
            raise TypeError("merge needs a MergeableStore")
        _check(lib.tb_mergeable_store_merge(self._m(), other._m()))
        return self

    # ---- hashes and diffs ----

    def get_mergeable_content_hashes(self) -> Tuple[int, int]:
        """getMergeableContentHashes: ``(tables_hash, values_hash)``."""
        t, v = c_uint32(), c_uint32()
        _check(lib.tb_mergeable_store_get_mergeable_content_hashes(self._m(), byref(t), byref(v)))
        return t.value, v.value

    def get_mergeable_content_hashes_json(self) -> str:
        return _call_str(lib.tb_mergeable_store_get_mergeable_content_hashes_json, self._m())

    def compute_content_hashes(self) -> Tuple[int, int]:
        """Recomputes both hashes from scratch (a consistency check)."""
        t, v = c_uint32(), c_uint32()
        _check(lib.tb_mergeable_store_compute_content_hashes(self._m(), byref(t), byref(v)))
        return t.value, v.value

    def get_mergeable_table_hashes_json(self) -> str:
        return _call_str(lib.tb_mergeable_store_get_mergeable_table_hashes_json, self._m())

    def get_mergeable_table_hashes(self) -> Dict[str, int]:
        """getMergeableTableHashes: ``{table_id: hash}``."""
        return json.loads(self.get_mergeable_table_hashes_json())

    def get_mergeable_value_hashes_json(self) -> str:
        return _call_str(lib.tb_mergeable_store_get_mergeable_value_hashes_json, self._m())

    def get_mergeable_value_hashes(self) -> Dict[str, int]:
        """getMergeableValueHashes: ``{value_id: hash}``."""
        return json.loads(self.get_mergeable_value_hashes_json())

    def _diff_json(self, fn: Any, other: Any) -> str:
        text = other if isinstance(other, (str, bytes, bytearray)) else _dumps(other)
        return _call_str(fn, self._m(), _text(text))

    def get_mergeable_table_diff_json(self, other_table_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_table_diff_json, other_table_hashes_json)

    def get_mergeable_table_diff(self, other_table_hashes: Dict[str, int]) -> List[Any]:
        """getMergeableTableDiff: ``[new_tables, differing_table_hashes]``."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_table_diff_json, other_table_hashes))

    def get_mergeable_row_hashes_json(self, other_table_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_row_hashes_json, other_table_hashes_json)

    def get_mergeable_row_hashes(self, other_table_hashes: Dict[str, int]) -> Dict[str, Dict[str, int]]:
        """getMergeableRowHashes: ``{table_id: {row_id: hash}}``."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_row_hashes_json, other_table_hashes))

    def get_mergeable_row_diff_json(self, other_row_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_row_diff_json, other_row_hashes_json)

    def get_mergeable_row_diff(self, other_row_hashes: Dict[str, Dict[str, int]]) -> List[Any]:
        """getMergeableRowDiff: ``[new_rows, differing_row_hashes]``."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_row_diff_json, other_row_hashes))

    def get_mergeable_cell_hashes_json(self, other_row_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_cell_hashes_json, other_row_hashes_json)

    def get_mergeable_cell_hashes(self, other_row_hashes: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
        """getMergeableCellHashes: ``{table_id: {row_id: {cell_id: hash}}}``."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_cell_hashes_json, other_row_hashes))

    def get_mergeable_cell_diff_json(self, other_cell_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_cell_diff_json, other_cell_hashes_json)

    def get_mergeable_cell_diff(self, other_cell_hashes: Dict[str, Any]) -> List[Any]:
        """getMergeableCellDiff: a TablesStamp of the differing cells."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_cell_diff_json, other_cell_hashes))

    def get_mergeable_value_diff_json(self, other_value_hashes_json: str) -> str:
        return self._diff_json(lib.tb_mergeable_store_get_mergeable_value_diff_json, other_value_hashes_json)

    def get_mergeable_value_diff(self, other_value_hashes: Dict[str, int]) -> List[Any]:
        """getMergeableValueDiff: a ValuesStamp of the differing values."""
        return json.loads(self._diff_json(lib.tb_mergeable_store_get_mergeable_value_diff_json, other_value_hashes))
