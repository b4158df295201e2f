"""One native handle shared by Python threads: the in-flight counting every wrapper object
(stores, event queues, buses, synchronizers) uses, so that ``close()`` never frees a handle
under a call still running on another thread (or on this one, from inside a callback)."""

from __future__ import annotations

import abc
import functools
import inspect
from typing import Any, Callable, List, Optional, TypeVar

from ._errors import ClosedError

__all__ = ["Closable", "NativeHandle", "hold_calls", "unheld"]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound="Closable")


class NativeHandle:
    """A native pointer plus the calls using it. Every call holds it between :meth:`enter` and
    :meth:`leave`. :meth:`close` makes later calls raise :class:`ClosedError` and frees the
    pointer once no call holds it: at once when none does, otherwise when the last call in
    flight returns. So close never waits (no deadlock when it runs inside a callback of a call in
    flight on the same thread, or on a thread that call waits for), and a pointer is never freed
    under a running call.

    Lock-free on the call path (a lock per call cost more than the call): list ``append`` /
    ``pop`` are atomic, a call registers itself before it reads the pointer, close clears the
    pointer before it looks for calls, and ``pop`` on a one-element list claims the free (and the
    close) exactly once."""

    __slots__ = ("_ptr", "_free", "_what", "_calls", "_owner", "_pending")

    def __init__(self, ptr: int, free: Optional[Callable[[int], Any]], what: str) -> None:
        self._ptr: Optional[int] = ptr
        self._free = free  # None: a borrowed pointer, never freed
        self._what = what
        self._calls: List[None] = []  # one entry per call in flight
        self._owner = [ptr]  # close() claims the pointer by popping it
        self._pending: List[int] = []  # the pointer to free once no call is in flight

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def try_enter(self) -> Optional[int]:
        """Holds the handle for one call: its pointer, or None (nothing held) once closed."""
        self._calls.append(None)
        p = self._ptr
        if p is None:
            self.leave()
        return p

    def enter(self) -> int:
        """As :meth:`try_enter`, but :class:`ClosedError` once closed."""
        p = self.try_enter()
        if p is None:
            raise ClosedError(f"{self._what} is closed")
        return p

    def leave(self) -> None:
        """Ends a call held with :meth:`enter`; the last one out after :meth:`close` frees."""
        calls = self._calls
        calls.pop()
        if not calls and self._ptr is None:
            self._free_pending()

    def _free_pending(self) -> None:
        try:
            p = self._pending.pop()
        except IndexError:  # freed already, or by another thread
            return
        if self._free is not None:
            self._free(p)

    def close(self, prepare: Optional[Callable[[int], Any]] = None) -> None:
        """No new calls; ``prepare(ptr)`` (e.g. stop a worker so that blocking calls return)
        runs while the pointer is still valid, then the pointer is freed as soon as no call
        holds it. Idempotent."""
        self._calls.append(None)  # this close, until prepare returned
        try:
            p = self._owner.pop()
        except IndexError:  # closed already
            self.leave()
            return
        self._ptr = None
        self._pending.append(p)
        try:
            if prepare is not None:
                prepare(p)
        finally:
            self.leave()


def _held(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        h = self._h  # enter() and leave() inlined: this runs on every call
        calls = h._calls
        calls.append(None)
        try:
            if h._ptr is None:
                raise ClosedError(f"{h._what} is closed")
            return f(self, *args, **kwargs)
        finally:
            calls.pop()
            if not calls and h._ptr is None:
                h._free_pending()

    return call


def unheld(f: F) -> F:
    """Marks a public method that :func:`hold_calls` leaves alone (it manages the handle)."""
    f._tb_unheld = True  # type: ignore[attr-defined]
    return f


def hold_calls(cls: C) -> C:
    """Class decorator: every public method defined in ``cls`` but ``close`` holds ``self._h`` (a
    :class:`NativeHandle`) for its duration, so native calls made inside use a live pointer and
    a closed handle raises :class:`ClosedError` on entry."""
    for name, f in list(vars(cls).items()):
        if name != "close" and not name.startswith("_") and inspect.isfunction(f) and not getattr(f, "_tb_unheld", False):
            setattr(cls, name, _held(f))
    return cls


class Closable(abc.ABC):
    """What every wrapper of a native handle shares: ``with`` closes it on exit, and garbage
    collection closes it too (``close`` is the subclass's, idempotent)."""

    __slots__ = ()

    @abc.abstractmethod
    def close(self) -> None:
        """Releases the native handle; idempotent. A wrapper without one cannot be made."""

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
