"""tinybase: TinyBase's Store and MergeableStore (native, thread-safe) for Python.

A pure-ctypes binding of the tinybase C library (``libtinybase``). The library is looked up, in
order: at ``$TINYBASE_LIBRARY`` (a developer's override), bundled in this package
(``tinybase/_lib/``, where installing puts it), then, when used from the source tree, in the cargo
target directories (``$CARGO_TARGET_DIR``, the checkout's ``target/release`` and
``target/debug``). The first library found must report this package's version
(:data:`__version__`), else the import raises :class:`LibraryVersionError`.

>>> import tinybase
>>> s = tinybase.MergeableStore("phone")
>>> s.set_cell("pets", "fido", "species", "dog").get_cell("pets", "fido", "species")
'dog'
>>> s.get_cell("pets", "fido", "legs") is tinybase.ABSENT
True

Absent versus null: a missing cell or value reads as :data:`ABSENT` (falsy; or pass
``default=``), while ``None`` is a stored JSON null. ``has_cell`` / ``has_value`` exist too.
"""

from __future__ import annotations

from ._errors import (
    CallbackErrorWarning,
    ClosedError,
    CorruptDataError,
    InvalidArgumentError,
    InvalidHlcError,
    InvalidJsonError,
    InvalidShapeError,
    InvalidStateError,
    InvalidUtf8Error,
    InvalidValueError,
    LibraryNotFoundError,
    LibraryVersionError,
    NullParameterError,
    PanicError,
    StorageError,
    TinyBaseError,
)
from ._native import candidate_paths as _candidate_paths
from ._native import lib as _lib
from ._native import library_path
from ._store import (
    ABSENT,
    Absent,
    Event,
    EventQueue,
    Listener,
    ListenerKind,
    MergeableStore,
    Store,
    Transaction,
    set_callback_error_handler,
)
from ._persist import (
    DurableInfo,
    FilePersister,
    Persister,
    PersisterStats,
    PersisterStatus,
    PostgresPersister,
    SqlitePersister,
)
from ._sync import (
    BroadcastChannel,
    Connection,
    ConnectionState,
    CustomSynchronizer,
    LocalBus,
    SyncMessage,
    SyncState,
    SyncStatus,
    SyncStatusInfo,
    Synchronizer,
    WsClient,
    WsSynchronizer,
)
from ._version import __version__

NullParameter = NullParameterError  # alias


def version() -> str:
    """The native library's version (``tb_version()``)."""
    return _lib.tb_version().decode()


def debug_live_handles() -> int:
    """``tb_debug_live_handles()``: objects owned by the host that need a free, plus listeners
    whose callback has not been released yet (a leak check for tests)."""
    return int(_lib.tb_debug_live_handles())


def library_candidates() -> list:
    """Every path the loader tries, in order."""
    return [str(p) for p in _candidate_paths()]


__all__ = [
    "ABSENT",
    "Absent",
    "BroadcastChannel",
    "Connection",
    "ConnectionState",
    "CustomSynchronizer",
    "LocalBus",
    "SyncMessage",
    "SyncState",
    "SyncStatus",
    "SyncStatusInfo",
    "Synchronizer",
    "WsClient",
    "WsSynchronizer",
    "DurableInfo",
    "FilePersister",
    "Persister",
    "PersisterStats",
    "PersisterStatus",
    "PostgresPersister",
    "SqlitePersister",
    "StorageError",
    "CorruptDataError",
    "CallbackErrorWarning",
    "ClosedError",
    "Event",
    "EventQueue",
    "InvalidArgumentError",
    "InvalidHlcError",
    "InvalidJsonError",
    "InvalidShapeError",
    "InvalidStateError",
    "InvalidUtf8Error",
    "InvalidValueError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "Listener",
    "ListenerKind",
    "MergeableStore",
    "NullParameter",
    "NullParameterError",
    "PanicError",
    "Store",
    "TinyBaseError",
    "Transaction",
    "debug_live_handles",
    "library_candidates",
    "library_path",
    "set_callback_error_handler",
    "version",
]
