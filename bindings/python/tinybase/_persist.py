"""Persisters over the C API: TinyBase's Persister (load, save, auto-load, auto-save, status,
stats, destroy) for a :class:`Store` or :class:`MergeableStore`, to a file
(:class:`FilePersister`, TinyBase's file format), SQLite (:class:`SqlitePersister`, TinyBase's
JSON layout or an incremental row-per-cell layout) or PostgreSQL (:class:`PostgresPersister`).

Beyond TinyBase: ``load`` merges what is stored into the store instead of replacing it, the
hashes of loaded content are checked, ``save`` returns once what it saved is durable, and data
that could not be loaded is never written over (:class:`CorruptDataError`, then
:meth:`Persister.move_aside_unreadable`).

``on_durable`` and ``on_ignored_error`` run on the persister's thread (a library thread), or on
the thread calling :meth:`Persister.save`, never under a lock: they may use the store and read
the persister's state, while its commands (load, save, flush ...) raise :class:`InvalidStateError`
there (they would wait for the thread running the callback); :meth:`Persister.close` is allowed.
Exceptions they raise are reported like listener exceptions
(:class:`tinybase.CallbackErrorWarning` or the handler set with
:func:`tinybase.set_callback_error_handler`), never propagated into native code.
"""

from __future__ import annotations

import os
import threading
from ctypes import byref, c_bool, c_uint64, c_uint32, c_void_p
from enum import IntEnum
from typing import Any, Callable, NamedTuple, Optional, Union

from . import _native
from ._errors import TinyBaseError, error_for
from ._handle import Closable, NativeHandle, hold_calls, unheld
from ._native import lib, tb_persister_options
from ._store import MergeableStore, Store, _callbacks, _id, _raise, _register, _release_trampoline, _report, _take_string
from ._sync import _check_callable

__all__ = [
    "PersisterStatus",
    "PersisterStats",
    "DurableInfo",
    "Persister",
    "FilePersister",
    "SqlitePersister",
    "PostgresPersister",
]

PathLike = Union[str, "os.PathLike[str]"]


class PersisterStatus(IntEnum):
    """What a persister is doing (TinyBase's ``getStatus()``; TB_PERSISTER_*)."""

    IDLE = 0
    LOADING = 1
    SAVING = 2


class PersisterStats(NamedTuple):
    """TinyBase's ``getStats()``: loads completed (including those that found nothing stored)
    and saves completed (whole-content saves and incremental transaction writes)."""

    loads: int
    saves: int


class DurableInfo(NamedTuple):
    """What ``on_durable`` receives: the MergeableStore content hashes now durable (0 and 0 for a
    plain Store; for an incremental SQLite or PostgreSQL write, the hashes of that transaction's
    changes), and the saves completed so far."""

    tables_hash: int
    values_hash: int
    saves: int


DurableHook = Callable[[DurableInfo], Any]
ErrorHook = Callable[[TinyBaseError], Any]


class _PersisterRecord:
    """What the native user_data key maps to while the library may call the hooks."""

    __slots__ = ("on_durable", "on_ignored_error")

    def __init__(self, on_durable: Optional[DurableHook], on_ignored_error: Optional[ErrorHook]) -> None:
        self.on_durable = on_durable
        self.on_ignored_error = on_ignored_error


# Module-level trampolines: alive as long as the module, so no ctypes pointer can dangle.
# Each records, per thread, which persister's callback is running, so that close() from inside it
# does not ask the library to destroy (wait for) the very save or thread that runs the callback.
_running = threading.local()


def _call_hook(key: int, fn: Callable[..., Any], arg: Any) -> None:
    keys = _running.__dict__.setdefault("keys", [])
    keys.append(key)
    try:
        fn(arg)
    finally:
        keys.pop()


def _in_own_callback(key: Optional[int]) -> bool:
    return key is not None and key in getattr(_running, "keys", ())


@_native.tb_persister_durable_fn
def _durable_trampoline(user_data: Optional[int], info: Any) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        fn = getattr(rec, "on_durable", None)
        if fn is None or not info:
            return
        i = info.contents
        _call_hook(user_data or 0, fn, DurableInfo(int(i.tables_hash), int(i.values_hash), int(i.saves)))
    except BaseException as e:  # noqa: BLE001 - nothing may cross into native code
        _report(e, fn)


@_native.tb_persister_error_fn
def _error_trampoline(user_data: Optional[int], status: int, message: Optional[bytes]) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        fn = getattr(rec, "on_ignored_error", None)
        if fn is None:
            return
        _call_hook(user_data or 0, fn, error_for(int(status), (message or b"").decode("utf-8", "replace")))
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)


def _seconds(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(v).__name__}")
    v = float(v)
    if not v > 0 or v == float("inf"):  # 0 would mean the library's default: say so instead
        raise ValueError(f"{what} must be a positive finite number of seconds, not {v}")
    return v


def _path(path: Any, what: str = "path") -> bytes:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, not {type(path).__name__}")
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"{what} must be a text path, not {type(p).__name__}")
    return _id(p, what)


@hold_calls
class Persister(Closable):
    """TinyBase's Persister for one :class:`Store` or :class:`MergeableStore`; created by
    :class:`FilePersister`, :class:`SqlitePersister` or :class:`PostgresPersister`.

    Nothing is read or written until a method is called. Methods are TinyBase's in snake_case;
    each blocks (with the GIL released) until done: :meth:`save` until what it saved is durable.
    :meth:`destroy` stops auto-load and auto-save (writing what is queued) and releases the
    storage (idempotent; later commands raise :class:`InvalidStateError`); :meth:`close` (or
    ``with``, or garbage collection) also frees it and releases its Python callbacks. The
    persister keeps the store alive.
    """

    _store: Store

    def __init__(self) -> None:  # pragma: no cover - use the subclasses
        raise TypeError("use tinybase.FilePersister, SqlitePersister or PostgresPersister")

    def _create(
        self,
        store: Store,
        on_durable: Optional[DurableHook],
        on_ignored_error: Optional[ErrorHook],
        auto_load_interval: float,
        lock_timeout: float,
        create: Callable[[int, Any, Any], int],
        o: Optional[tb_persister_options] = None,
    ) -> None:
        """Fills the options, runs ``create(store_ptr, options*, out*)`` and takes the new
        handle; the hooks' registry entry is popped when creation fails (the library then never
        releases it)."""
        if not isinstance(store, Store):
            raise TypeError(f"a persister needs a tinybase.Store or MergeableStore, not {type(store).__name__}")
        _check_callable(on_durable, "on_durable")
        _check_callable(on_ignored_error, "on_ignored_error")
        if o is None:
            o = tb_persister_options()
        o.auto_load_interval_seconds = _seconds(auto_load_interval, "auto_load_interval")
        o.lock_timeout_seconds = _seconds(lock_timeout, "lock_timeout")
        key = None
        if on_durable is not None or on_ignored_error is not None:
            key = _register(_PersisterRecord(on_durable, on_ignored_error))
            if on_durable is not None:
                o.on_durable = _durable_trampoline
            if on_ignored_error is not None:
                o.on_ignored_error = _error_trampoline
            o.user_data = key
            o.release = _release_trampoline
        out = c_void_p()
        st = -1
        try:
            s = store._h.enter()
            try:
                if isinstance(store, MergeableStore):  # its handle is a tb_mergeable_store
                    s = lib.tb_mergeable_store_as_store(s)
                st = create(s, byref(o), byref(out))
            finally:
                store._h.leave()
        finally:
            if st and key is not None:
                _callbacks.pop(key, None)
        if st:
            _raise(st)
        self._store = store
        self._key = key
        self._h = NativeHandle(out.value, lib.tb_persister_free, "persister")  # type: ignore[arg-type]

    def _call(self, fn: Any, *args: Any) -> None:
        st = fn(self._h._ptr, *args)  # the public methods hold self._h (hold_calls)
        if st:
            _raise(st)

    def _bool(self, fn: Any, *args: Any) -> bool:
        out = c_bool()
        self._call(fn, *args, byref(out))
        return bool(out.value)

    @property
    def store(self) -> Store:
        """The store this persister persists."""
        return self._store

    @property
    def closed(self) -> bool:
        h = getattr(self, "_h", None)
        return h is None or h.closed

    def describe(self) -> str:
        """Names the storage (``file /data/room.json``, ``sqlite /x.db (json)``)."""
        out = c_void_p()
        self._call(lib.tb_persister_describe, byref(out))
        return _take_string(out)

    # ---- commands ----

    def load(self) -> bool:
        """load: merges what is stored into the store (a MergeableStore merges stamps; a plain
        Store takes the stored cells and values over its own and keeps those only it has).
        False when nothing is stored yet: the store is left as it is. Unreadable data raises
        :class:`CorruptDataError`, leaves the store and the data untouched, and from then on
        saves are refused until a load succeeds or :meth:`move_aside_unreadable` is called."""
        return self._bool(lib.tb_persister_load)

    def save(self) -> "Persister":
        """save: writes the whole content (what another process stored meanwhile is merged in
        first, under the storage's lock) and returns once it is durable."""
        self._call(lib.tb_persister_save)
        return self

    def start_auto_load(self) -> "Persister":
        """startAutoLoad: loads now (raising that load's error, auto-load then stays off), then
        merges what another process writes (checked every ``auto_load_interval`` seconds)."""
        self._call(lib.tb_persister_start_auto_load)
        return self

    def stop_auto_load(self) -> "Persister":
        self._call(lib.tb_persister_stop_auto_load)
        return self

    def start_auto_save(self) -> "Persister":
        """startAutoSave: saves now, then after every committed transaction (on the persister's
        thread). Refused while stored data could not be loaded."""
        self._call(lib.tb_persister_start_auto_save)
        return self

    def stop_auto_save(self) -> "Persister":
        """stopAutoSave: writes what is queued first."""
        self._call(lib.tb_persister_stop_auto_save)
        return self

    def is_auto_loading(self) -> bool:
        return self._bool(lib.tb_persister_is_auto_loading)

    def is_auto_saving(self) -> bool:
        return self._bool(lib.tb_persister_is_auto_saving)

    def get_status(self) -> PersisterStatus:
        """getStatus: idle, loading or saving."""
        out = c_uint32()
        self._call(lib.tb_persister_get_status, byref(out))
        return PersisterStatus(out.value)

    def get_stats(self) -> PersisterStats:
        """getStats: loads and saves completed."""
        loads, saves = c_uint64(), c_uint64()
        self._call(lib.tb_persister_get_stats, byref(loads), byref(saves))
        return PersisterStats(int(loads.value), int(saves.value))

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits (GIL released) until every transaction committed before the call is durable
        (auto-save); False when ``timeout`` seconds passed first. Raises the first auto-save
        error since the last call instead."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        return self._bool(lib.tb_persister_flush, float(timeout))

    def move_aside_unreadable(self) -> Optional[str]:
        """After a load raised :class:`CorruptDataError`: moves the unreadable data aside (a
        file renamed ``<name>.corrupt``, a database row or file kept under another name) so that
        saves may write afresh, and returns where it went; None when no load has failed."""
        out = c_void_p()
        self._call(lib.tb_persister_move_aside_unreadable, byref(out))
        return _take_string(out) if out.value else None

    # ---- lifetime ----

    @unheld
    def destroy(self) -> None:
        """destroy: stops auto-load and auto-save (writing what is queued) and releases the
        storage; afterwards no callback of it runs and commands raise
        :class:`InvalidStateError`. Idempotent (also after :meth:`close`)."""
        p = self._h.try_enter()
        if p is None:
            return
        try:
            st = lib.tb_persister_destroy(p)
        finally:
            self._h.leave()
        if st:
            _raise(st)

    def close(self) -> None:
        """Destroys and frees the persister, releasing its Python callbacks (idempotent). Later
        calls raise :class:`ClosedError`. When other threads are inside a call on it, the free
        happens when the last one returns."""
        h = getattr(self, "_h", None)
        if h is None:
            return
        if _in_own_callback(getattr(self, "_key", None)):
            # From inside its own callback: the free (which destroys) happens once the save in
            # flight on this thread returned, or at once on the persister's thread, where the
            # library defers it until the callback returned.
            h.close()
        else:
            # destroy first (writes what is queued, stops the threads) so that calls in flight
            # on other threads (flush ...) return; the free follows when they have.
            h.close(lib.tb_persister_destroy)

    def __repr__(self) -> str:
        return f"<tinybase.{type(self).__name__}{' closed' if self.closed else ''}>"


class FilePersister(Persister):
    """createFilePersister: the store in one file, in TinyBase's format (a MergeableStore's
    wire-form mergeable content, a Store's ``[tables, values]``), written atomically and durably
    (temp file, fsync, rename, fsync of the folder) under a lock against other processes.

    ``on_durable(info)`` (a :class:`DurableInfo`) runs each time a save is durable;
    ``on_ignored_error(error)`` (a :class:`TinyBaseError`) gets the errors auto-load and
    auto-save meet. ``auto_load_interval``: seconds between auto-load's checks for another
    process's writes; ``lock_timeout``: seconds a save waits for another process's lock before
    raising :class:`StorageError`.
    """

    path: str

    def __init__(
        self,
        store: Store,
        path: PathLike,
        *,
        on_durable: Optional[DurableHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        auto_load_interval: float = 0.25,
        lock_timeout: float = 10.0,
    ) -> None:
        p = _path(path)
        self._create(store, on_durable, on_ignored_error, auto_load_interval, lock_timeout, lambda s, o, out: lib.tb_file_persister_new(s, p, o, out))
        self.path = os.fspath(path)


_SQLITE_MODES = {"json": 0, "incremental": 1}


class SqlitePersister(Persister):
    """createSqlitePersister over a database file (bundled SQLite).

    ``mode="json"``: TinyBase's layout (table ``table_name`` with columns ``id_column_name`` and
    ``store_column_name``, one row ``_`` holding the content as JSON), so databases move between
    TinyBase's SQLite persisters and this one. ``mode="incremental"`` (beyond TinyBase, a
    MergeableStore only): one row per cell and value with its HLC and hash, WAL, each committed
    transaction written as one SQLite transaction. Other arguments as for
    :class:`FilePersister`.
    """

    path: str
    mode: str

    def __init__(
        self,
        store: Store,
        path: PathLike,
        mode: str = "json",
        *,
        table_name: str = "tinybase",
        id_column_name: str = "_id",
        store_column_name: str = "store",
        on_durable: Optional[DurableHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        auto_load_interval: float = 0.25,
        lock_timeout: float = 10.0,
    ) -> None:
        if mode not in _SQLITE_MODES:
            raise ValueError(f"mode must be 'json' or 'incremental', not {mode!r}")
        p = _path(path)
        o = tb_persister_options()
        o.sqlite_table_name = _id(table_name, "table_name")
        o.sqlite_id_column_name = _id(id_column_name, "id_column_name")
        o.sqlite_store_column_name = _id(store_column_name, "store_column_name")
        m = _SQLITE_MODES[mode]
        self._create(store, on_durable, on_ignored_error, auto_load_interval, lock_timeout, lambda s, o_, out: lib.tb_sqlite_persister_new(s, p, m, o_, out), o)
        self.path = os.fspath(path)
        self.mode = mode


class PostgresPersister(Persister):
    """A PostgreSQL persister (beyond TinyBase, for servers): the incremental layout in the
    database at ``dsn`` (``postgresql://user@host:port/db`` or ``host=... port=...``), keyed by
    ``room``, so several processes can share one database and a room can move between them. A
    MergeableStore only. :class:`InvalidStateError` when the library was built without
    PostgreSQL. Other arguments as for :class:`FilePersister`.
    """

    room: str

    def __init__(
        self,
        store: Store,
        dsn: str,
        room: str,
        *,
        on_durable: Optional[DurableHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        auto_load_interval: float = 0.25,
        lock_timeout: float = 10.0,
    ) -> None:
        d = _id(dsn, "dsn")
        r = _id(room, "room")
        self._create(store, on_durable, on_ignored_error, auto_load_interval, lock_timeout, lambda s, o, out: lib.tb_postgres_persister_new(s, d, r, o, out))
        self.room = room
