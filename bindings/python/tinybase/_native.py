"""Loading of the tinybase shared library and the ctypes prototypes of its C API.

Nothing here is public API: use :mod:`tinybase` instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import List, Optional, Tuple

from ._version import __version__

__all__ = ["lib", "library_path", "candidate_paths", "LibraryNotFoundError", "LibraryVersionError"]


def _library_names() -> List[str]:
    if sys.platform == "darwin":
        return ["libtinybase.dylib"]
    if os.name == "nt":
        return ["tinybase.dll", "libtinybase.dll"]
    return ["libtinybase.so"]


def _source_repo() -> Optional[Path]:
    """The repository root when the package is used from the source tree (not installed)."""
    # bindings/python/tinybase/_native.py -> repository root is three levels up.
    root = Path(__file__).resolve().parent.parent.parent.parent
    return root if (root / "Cargo.toml").is_file() else None


# Where a candidate comes from, which decides the advice when its version is wrong.
_ENV = "TINYBASE_LIBRARY"
_BUNDLED = "bundled"
_CARGO = "cargo"
_ORIGIN_NAMES = {
    _ENV: "from $TINYBASE_LIBRARY",
    _BUNDLED: "bundled with the package",
    _CARGO: "from a cargo target directory",
}


def _candidates() -> List[Tuple[Path, str]]:
    """Every path tried, in order, with where it comes from."""
    names = _library_names()
    out: List[Tuple[Path, str]] = []
    env = os.environ.get("TINYBASE_LIBRARY")
    if env:  # the developer's override comes first
        p = Path(env)
        if p.is_dir():
            out.extend((p / n, _ENV) for n in names)
        else:
            out.append((p, _ENV))
    bundled = Path(__file__).resolve().parent / "_lib"
    out.extend((bundled / n, _BUNDLED) for n in names)
    target_dirs: List[Path] = []
    cargo_target = os.environ.get("CARGO_TARGET_DIR")
    if cargo_target:
        target_dirs.append(Path(cargo_target))
    root = _source_repo()
    if root is not None:
        target_dirs.append(root / "target")
    for t in target_dirs:
        for profile in ("release", "debug"):
            out.extend((t / profile / n, _CARGO) for n in names)
    return out


def candidate_paths() -> List[Path]:
    """Every path tried, in order: ``$TINYBASE_LIBRARY``, bundled, cargo target directories."""
    return [p for p, _ in _candidates()]


class LibraryNotFoundError(ImportError):
    """The tinybase shared library was not found (the message lists every path tried)."""


class LibraryVersionError(ImportError):
    """The tinybase shared library found is not the version this package was built for."""


def _check_version(library: ctypes.CDLL, path: Path, origin: str) -> None:
    """Raises :class:`LibraryVersionError` unless ``library`` reports :data:`__version__`.

    The C ABI can change between versions, so a mismatched library could crash rather than fail.
    """
    try:
        tb_version = library.tb_version
    except AttributeError:
        found = "unknown (it has no tb_version())"
    else:
        tb_version.restype = c_char_p
        tb_version.argtypes = []
        raw = tb_version()
        found = raw.decode("utf-8", "replace") if raw is not None else "unknown (tb_version() returned NULL)"
    if found == __version__:
        return
    if origin == _ENV:
        advice = (
            f"Unset TINYBASE_LIBRARY to use the library installed with the package, or point it at a "
            f"libtinybase built from tinybase {__version__}."
        )
    elif origin == _BUNDLED:
        advice = (
            "The installation is inconsistent: reinstall the package "
            "(`pip install --force-reinstall tinybase`, or `pip install --force-reinstall ./bindings/python` "
            "from the repository)."
        )
    else:
        advice = (
            "Rebuild it with `cargo build --release` in the checkout this package comes from, or set "
            "TINYBASE_LIBRARY to a libtinybase of that version."
        )
    raise LibraryVersionError(
        f"tinybase {__version__}: the tinybase library at {path} ({_ORIGIN_NAMES[origin]}) is version "
        f"{found}, not {__version__}. {advice}"
    )


def _load() -> "tuple[ctypes.CDLL, Path]":
    tried: List[str] = []
    for p, origin in _candidates():
        if p.is_file():
            try:
                library = ctypes.CDLL(str(p))
            except OSError as e:
                tried.append(f"{p} (could not load: {e})")
                continue
            _check_version(library, p, origin)
            return library, p
        tried.append(f"{p} (not found)")
    raise LibraryNotFoundError(
        "tinybase: cannot find the tinybase shared library. Tried:\n  "
        + "\n  ".join(tried)
        + "\nReinstall the package (`pip install ./bindings/python` builds the library), build it with "
        "`cargo build --release` in the repository, or set TINYBASE_LIBRARY to the path of libtinybase."
    )


lib, library_path = _load()


# -- types ------------------------------------------------------------------------------------

class tb_value(Structure):
    _fields_ = [
        ("kind", c_uint32),
        ("boolean", c_bool),
        ("number", c_double),
        ("string", c_void_p),  # c_void_p, not c_char_p: strings may hold NUL (use length)
        ("length", c_size_t),
        ("owned", c_bool),
    ]


class tb_value_in(Structure):
    """tb_value as passed into setters: same layout, ``string`` a borrowed NUL-terminated str."""

    _fields_ = [
        ("kind", c_uint32),
        ("boolean", c_bool),
        ("number", c_double),
        ("string", c_char_p),
        ("length", c_size_t),
        ("owned", c_bool),
    ]


class tb_event(Structure):
    _fields_ = [
        ("kind", c_uint32),
        ("listener_id", c_uint64),
        ("table_id", c_char_p),
        ("row_id", c_char_p),
        ("cell_id", c_char_p),
        ("value_id", c_char_p),
        ("new_value", tb_value),
        ("old_value", tb_value),
        ("has", c_bool),
        ("row_count", c_size_t),
    ]


tb_now_fn = CFUNCTYPE(c_double, c_void_p)
tb_release_fn = CFUNCTYPE(None, c_void_p)
tb_listener_fn = CFUNCTYPE(None, c_void_p, c_void_p, POINTER(tb_event))
tb_notify_fn = CFUNCTYPE(None, c_void_p)
tb_transaction_fn = CFUNCTYPE(c_bool, c_void_p, c_void_p)

P = c_void_p  # opaque handles
S = c_char_p  # input strings
OUT_S = POINTER(c_void_p)  # char** out (kept as void* to free with tb_string_free)


def _proto(name: str, restype, *argtypes) -> None:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_proto("tb_debug_live_handles", c_int64)
_proto("tb_version", c_char_p)
_proto("tb_last_error_message", c_char_p)
_proto("tb_last_error_status", c_int)
_proto("tb_last_error_message_copy", c_size_t, c_void_p, c_size_t)
_proto("tb_last_error_clear", None)
_proto("tb_string_free", None, c_void_p)
_proto("tb_value_free", None, POINTER(tb_value))
_proto("tb_event_free", None, POINTER(tb_event))

_proto("tb_store_new", c_int, POINTER(c_void_p))
_proto("tb_store_clone", c_int, P, POINTER(c_void_p))
_proto("tb_store_free", None, P)
_proto("tb_store_as_mergeable", c_int, P, POINTER(c_void_p))
_proto("tb_mergeable_store_new", c_int, S, POINTER(c_void_p))
_proto("tb_mergeable_store_new_with_clock", c_int, S, tb_now_fn, c_void_p, tb_release_fn, POINTER(c_void_p))
_proto("tb_mergeable_store_clone", c_int, P, POINTER(c_void_p))
_proto("tb_mergeable_store_free", None, P)
_proto("tb_mergeable_store_as_store", c_void_p, P)

_proto("tb_store_add_listener", c_int, P, c_uint32, S, S, S, tb_listener_fn, c_void_p, tb_release_fn, POINTER(c_uint64))
_proto("tb_store_del_listener", c_int, P, c_uint64)
_proto("tb_store_call_listener", c_int, P, c_uint64)
_proto("tb_store_get_listener_count", c_int, P, POINTER(c_size_t))
_proto("tb_event_queue_new", c_int, tb_notify_fn, c_void_p, tb_release_fn, POINTER(c_void_p))
_proto("tb_event_queue_free", None, P)
_proto("tb_store_add_buffered_listener", c_int, P, P, c_uint32, S, S, S, POINTER(c_uint64))
_proto("tb_event_queue_poll", c_int, P, POINTER(POINTER(tb_event)))
_proto("tb_event_queue_wait", c_int, P, c_uint32, POINTER(POINTER(tb_event)))
_proto("tb_event_queue_len", c_int, P, POINTER(c_size_t))

for _n in (
    "get_mergeable_content_json",
    "get_encoded_mergeable_content_json",
    "get_mergeable_content_hashes_json",
    "get_mergeable_table_hashes_json",
    "get_mergeable_value_hashes_json",
):
    _proto("tb_mergeable_store_" + _n, c_int, P, OUT_S)
for _n in ("get_transaction_mergeable_changes_json", "get_encoded_transaction_mergeable_changes_json"):
    _proto("tb_mergeable_store_" + _n, c_int, P, c_bool, OUT_S)
for _n in (
    "get_mergeable_table_diff_json",
    "get_mergeable_row_hashes_json",
    "get_mergeable_row_diff_json",
    "get_mergeable_cell_hashes_json",
    "get_mergeable_cell_diff_json",
    "get_mergeable_value_diff_json",
):
    _proto("tb_mergeable_store_" + _n, c_int, P, S, OUT_S)
for _n in (
    "apply_mergeable_changes_json",
    "apply_decoded_mergeable_changes_json",
    "set_mergeable_content_json",
    "set_decoded_mergeable_content_json",
    "set_default_content_json",
):
    _proto("tb_mergeable_store_" + _n, c_int, P, S)
_proto("tb_mergeable_store_get_mergeable_content_hashes", c_int, P, POINTER(c_uint32), POINTER(c_uint32))
_proto("tb_mergeable_store_compute_content_hashes", c_int, P, POINTER(c_uint32), POINTER(c_uint32))
_proto("tb_mergeable_store_merge", c_int, P, P)

for _n in (
    "get_tables_json",
    "get_values_json",
    "get_json",
    "get_content_json",
    "get_table_ids_json",
    "get_value_ids_json",
    "get_transaction_changes_json",
):
    _proto("tb_store_" + _n, c_int, P, OUT_S)
for _n in ("get_table_json", "get_table_cell_ids_json", "get_row_ids_json"):
    _proto("tb_store_" + _n, c_int, P, S, OUT_S)
for _n in ("get_row_json", "get_cell_ids_json"):
    _proto("tb_store_" + _n, c_int, P, S, S, OUT_S)
_proto("tb_store_get_row_count", c_int, P, S, POINTER(c_size_t))
_proto("tb_store_get_cell", c_int, P, S, S, S, POINTER(tb_value))
_proto("tb_store_get_value", c_int, P, S, POINTER(tb_value))
_proto("tb_store_has_tables", c_int, P, POINTER(c_bool))
_proto("tb_store_has_values", c_int, P, POINTER(c_bool))
_proto("tb_store_has_table", c_int, P, S, POINTER(c_bool))
_proto("tb_store_has_value", c_int, P, S, POINTER(c_bool))
_proto("tb_store_has_table_cell", c_int, P, S, S, POINTER(c_bool))
_proto("tb_store_has_row", c_int, P, S, S, POINTER(c_bool))
_proto("tb_store_has_cell", c_int, P, S, S, S, POINTER(c_bool))
for _n in (
    "set_tables_json",
    "set_values_json",
    "set_json",
    "set_content_json",
    "set_partial_values_json",
    "apply_changes_json",
):
    _proto("tb_store_" + _n, c_int, P, S)
_proto("tb_store_set_table_json", c_int, P, S, S)
_proto("tb_store_set_row_json", c_int, P, S, S, S)
_proto("tb_store_set_partial_row_json", c_int, P, S, S, S)
_proto("tb_store_add_row_json", c_int, P, S, S, c_bool, OUT_S)
_proto("tb_store_set_cell", c_int, P, S, S, S, POINTER(tb_value_in))
_proto("tb_store_set_cell_string", c_int, P, S, S, S, S)
_proto("tb_store_set_cell_json", c_int, P, S, S, S, S)
_proto("tb_store_set_value", c_int, P, S, POINTER(tb_value_in))
_proto("tb_store_set_value_json", c_int, P, S, S)
_proto("tb_store_del_tables", c_int, P)
_proto("tb_store_del_values", c_int, P)
_proto("tb_store_del_table", c_int, P, S)
_proto("tb_store_del_value", c_int, P, S)
_proto("tb_store_del_row", c_int, P, S, S)
_proto("tb_store_del_cell", c_int, P, S, S, S)
_proto("tb_store_transaction", c_int, P, tb_transaction_fn, c_void_p)
_proto("tb_store_start_transaction", c_int, P)
_proto("tb_store_finish_transaction", c_int, P, c_bool)

# -- synchronizers ----------------------------------------------------------------------------

# Strings the library passes to these callbacks are borrowed: payloads/bodies are read with their
# length (c_void_p + size_t), client/request ids and errors as NUL-terminated c_char_p (copied to
# bytes by ctypes before the Python callable runs).
tb_sync_send_fn = CFUNCTYPE(None, c_void_p, c_char_p, c_void_p, c_size_t)
tb_sync_send_frame_fn = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t)
tb_sync_message_fn = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_uint32, c_void_p, c_size_t)
tb_sync_error_fn = CFUNCTYPE(None, c_void_p, c_char_p)


class tb_sync_status_info(Structure):
    _fields_ = [
        ("state", c_uint32),
        ("pending_requests", c_size_t),
        ("sends", c_uint64),
        ("receives", c_uint64),
        ("last_error", c_char_p),
        ("connection", c_uint32),
        ("close_code", c_uint16),
        ("close_reason", c_char_p),
    ]


tb_sync_status_fn = CFUNCTYPE(None, c_void_p, POINTER(tb_sync_status_info))


class tb_synchronizer_options(Structure):
    _fields_ = [
        ("request_timeout_seconds", c_double),
        ("anti_entropy_seconds", c_double),
        ("on_send", tb_sync_message_fn),
        ("on_receive", tb_sync_message_fn),
        ("on_ignored_error", tb_sync_error_fn),
        ("user_data", c_void_p),
        ("release", tb_release_fn),
        ("inbox_max_payloads", c_size_t),
        ("inbox_max_bytes", c_size_t),
        ("on_status", tb_sync_status_fn),
    ]


class tb_ws_synchronizer_options(Structure):
    _fields_ = [
        ("sync", tb_synchronizer_options),
        ("channel_id", c_char_p),
        ("fragment_size", c_size_t),
        ("no_reconnect", c_bool),
        ("reconnect_min_seconds", c_double),
        ("reconnect_max_seconds", c_double),
        ("ping_interval_seconds", c_double),
        ("connect_timeout_seconds", c_double),
        ("ca_file", c_char_p),
        ("headers", POINTER(c_char_p)),
        ("header_count", c_size_t),
    ]


OPTS = POINTER(tb_synchronizer_options)
_proto("tb_synchronizer_new_custom", c_int, P, tb_sync_send_fn, c_void_p, tb_release_fn, OPTS, POINTER(c_void_p))
_proto("tb_synchronizer_new_custom_framed", c_int, P, tb_sync_send_frame_fn, c_void_p, tb_release_fn, OPTS, POINTER(c_void_p))
_proto("tb_synchronizer_receive", c_int, P, S, S)
_proto("tb_synchronizer_receive_framed", c_int, P, S)
for _n in ("start_sync", "load", "start_auto_load"):
    _proto("tb_synchronizer_" + _n, c_int, P, S)
for _n in ("stop_sync", "save", "stop_auto_load", "start_auto_save", "stop_auto_save", "destroy"):
    _proto("tb_synchronizer_" + _n, c_int, P)
_proto("tb_synchronizer_get_status", c_int, P, POINTER(c_uint32))
_proto("tb_synchronizer_get_connection_state", c_int, P, POINTER(c_uint32), POINTER(c_uint16), OUT_S)
_proto("tb_synchronizer_get_stats", c_int, P, POINTER(c_uint64), POINTER(c_uint64))
_proto("tb_synchronizer_get_inbox_stats", c_int, P, POINTER(c_size_t), POINTER(c_size_t), POINTER(c_uint64))
_proto("tb_synchronizer_is_idle", c_int, P, POINTER(c_bool))
_proto("tb_synchronizer_is_settled", c_int, P, POINTER(c_bool))
_proto("tb_synchronizer_wait_for_idle", c_int, P, c_double, POINTER(c_bool))
_proto("tb_synchronizer_free", None, P)
_proto("tb_local_bus_new", c_int, POINTER(c_void_p))
_proto("tb_local_bus_free", None, P)
_proto("tb_local_bus_create_synchronizer", c_int, P, P, OPTS, POINTER(c_void_p))
_proto("tb_local_bus_wait_for_idle", c_int, P, c_double, POINTER(c_bool))
_proto("tb_broadcast_channel_open", c_int, S, POINTER(c_void_p))
WS_OPTS = POINTER(tb_ws_synchronizer_options)
_proto("tb_ws_synchronizer_new", c_int, P, S, WS_OPTS, POINTER(c_void_p))
_proto("tb_ws_client_new", c_int, S, WS_OPTS, POINTER(c_void_p))
_proto("tb_ws_client_free", None, P)
_proto("tb_ws_client_create_synchronizer", c_int, P, P, S, OPTS, POINTER(c_void_p))
_proto("tb_ws_client_get_connection_state", c_int, P, POINTER(c_uint32), POINTER(c_uint16), OUT_S)

# -- persisters -------------------------------------------------------------------------------


class tb_durable_info(Structure):
    _fields_ = [
        ("tables_hash", c_uint32),
        ("values_hash", c_uint32),
        ("saves", c_uint64),
    ]


tb_persister_durable_fn = CFUNCTYPE(None, c_void_p, POINTER(tb_durable_info))
# The message is borrowed for the call: c_char_p copies it to bytes before the Python callable runs.
tb_persister_error_fn = CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class tb_persister_options(Structure):
    _fields_ = [
        ("on_durable", tb_persister_durable_fn),
        ("on_ignored_error", tb_persister_error_fn),
        ("user_data", c_void_p),
        ("release", tb_release_fn),
        ("auto_load_interval_seconds", c_double),
        ("lock_timeout_seconds", c_double),
        ("sqlite_table_name", c_char_p),
        ("sqlite_id_column_name", c_char_p),
        ("sqlite_store_column_name", c_char_p),
    ]


P_OPTS = POINTER(tb_persister_options)
_proto("tb_file_persister_new", c_int, P, S, P_OPTS, POINTER(c_void_p))
_proto("tb_sqlite_persister_new", c_int, P, S, c_uint32, P_OPTS, POINTER(c_void_p))
_proto("tb_postgres_persister_new", c_int, P, S, S, P_OPTS, POINTER(c_void_p))
_proto("tb_persister_load", c_int, P, POINTER(c_bool))
for _n in ("save", "start_auto_load", "stop_auto_load", "start_auto_save", "stop_auto_save", "destroy"):
    _proto("tb_persister_" + _n, c_int, P)
_proto("tb_persister_is_auto_loading", c_int, P, POINTER(c_bool))
_proto("tb_persister_is_auto_saving", c_int, P, POINTER(c_bool))
_proto("tb_persister_get_status", c_int, P, POINTER(c_uint32))
_proto("tb_persister_get_stats", c_int, P, POINTER(c_uint64), POINTER(c_uint64))
_proto("tb_persister_flush", c_int, P, c_double, POINTER(c_bool))
_proto("tb_persister_move_aside_unreadable", c_int, P, OUT_S)
_proto("tb_persister_describe", c_int, P, OUT_S)
_proto("tb_persister_free", None, P)
