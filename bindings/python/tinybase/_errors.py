"""Exceptions raised by the tinybase package."""

from __future__ import annotations

from typing import Dict, Optional, Type

from ._native import LibraryNotFoundError, LibraryVersionError, lib

__all__ = [
    "TinyBaseError",
    "NullParameterError",
    "InvalidUtf8Error",
    "InvalidJsonError",
    "InvalidValueError",
    "InvalidShapeError",
    "InvalidHlcError",
    "InvalidStateError",
    "InvalidArgumentError",
    "PanicError",
    "StorageError",
    "CorruptDataError",
    "ClosedError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "CallbackErrorWarning",
]


class TinyBaseError(Exception):
    """Base class of every error the library reports.

    ``status`` is the C ``tb_status`` code (0 for errors detected on the Python side before
    calling the library) and ``message`` the library's message.
    """

    status: int = 0

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NullParameterError(TinyBaseError):
    """TB_ERROR_NULL_PARAMETER: a required pointer was NULL (a closed or invalid handle)."""

    status = 1


class InvalidUtf8Error(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_UTF8: a string was not valid UTF-8 (e.g. a lone surrogate)."""

    status = 2


class InvalidJsonError(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_JSON: malformed JSON text (or over the size/depth limits)."""

    status = 3


class InvalidValueError(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_VALUE: not a string, finite number, boolean, None, dict or list, or a
    reserved string. Also raised on the Python side for values of unsupported types."""

    status = 4


class InvalidShapeError(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_SHAPE: valid JSON without the expected shape."""

    status = 5


class InvalidHlcError(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_HLC: a malformed HLC, or one more than five minutes in the future."""

    status = 6


class InvalidStateError(TinyBaseError):
    """TB_ERROR_INVALID_STATE: not allowed now (e.g. finishing a transaction never started)."""

    status = 7


class InvalidArgumentError(TinyBaseError, ValueError):
    """TB_ERROR_INVALID_ARGUMENT: an argument out of range. Also raised on the Python side for
    ids the C API cannot carry (strings containing NUL)."""

    status = 8


class PanicError(TinyBaseError):
    """TB_ERROR_PANIC: an internal error was caught at the boundary; the store is unchanged."""

    status = 9


class StorageError(TinyBaseError, OSError):
    """TB_ERROR_IO: the storage could not be read or written (a file system or database error,
    or another process holding the storage's write lock past the persister's lock timeout)."""

    status = 10


class CorruptDataError(TinyBaseError, ValueError):
    """TB_ERROR_CORRUPT: stored data could not be loaded (not JSON, the wrong shape, hashes that
    do not match, HLCs from the far future). The data is left untouched and the persister refuses
    to save over it until a load succeeds or ``move_aside_unreadable()`` is called."""

    status = 11


class ClosedError(InvalidStateError):
    """The handle was closed with ``close()``."""


class CallbackErrorWarning(RuntimeWarning):
    """Issued when a Python callback (listener, clock, notify) raised: the exception cannot
    cross into native code, so it is reported with this warning (see
    :func:`tinybase.set_callback_error_handler`)."""


_BY_STATUS: Dict[int, Type[TinyBaseError]] = {
    c.status: c
    for c in (
        NullParameterError,
        InvalidUtf8Error,
        InvalidJsonError,
        InvalidValueError,
        InvalidShapeError,
        InvalidHlcError,
        InvalidStateError,
        InvalidArgumentError,
        PanicError,
        StorageError,
        CorruptDataError,
    )
}


def error_for(status: int, message: str) -> TinyBaseError:
    """The exception for ``status`` with ``message`` (e.g. an error a library callback reports)."""
    cls = _BY_STATUS.get(status, TinyBaseError)
    return cls(message or f"tinybase call failed with status {status}", status)


def error_from_status(status: int) -> TinyBaseError:
    """The exception for a failed call: must be called right after it, on the same thread."""
    raw = lib.tb_last_error_message()
    return error_for(status, raw.decode("utf-8", "replace") if raw else "")
