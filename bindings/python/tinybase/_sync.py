"""Synchronizers over the C API: TinyBase's sync protocol through Python transports
(:class:`CustomSynchronizer`), in-process buses (:class:`LocalBus`) and named channels
(:class:`BroadcastChannel`).

Every synchronizer has one native worker thread. The transport's ``send`` and the ``on_send`` /
``on_receive`` / ``on_ignored_error`` hooks run on that thread (a library thread, not yours),
one at a time per synchronizer, never under a store lock. Exceptions they raise never cross into
native code: they are reported like listener exceptions (:class:`tinybase.CallbackErrorWarning`
or the handler set with :func:`tinybase.set_callback_error_handler`).
"""

from __future__ import annotations

import os
from ctypes import byref, c_bool, c_char_p, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p, string_at
from enum import IntEnum
from typing import Any, Callable, Dict, Iterable, Mapping, NamedTuple, Optional, Tuple, Union

from . import _native
from ._errors import ClosedError
from ._handle import Closable, NativeHandle, hold_calls
from ._jsjson import js_dumps
from ._native import lib, tb_synchronizer_options, tb_ws_synchronizer_options
from ._store import (
    MergeableStore,
    _callbacks,
    _check,
    _dumps,
    _id,
    _raise,
    _register,
    _release_trampoline,
    _report,
    _take_string,
    _text,
)

__all__ = [
    "SyncStatus",
    "SyncState",
    "SyncStatusInfo",
    "ConnectionState",
    "Connection",
    "SyncMessage",
    "Synchronizer",
    "CustomSynchronizer",
    "LocalBus",
    "BroadcastChannel",
    "WsSynchronizer",
    "WsClient",
]


class SyncStatus(IntEnum):
    """A synchronizer's status (TinyBase's ``getStatus()``; TB_SYNC_STATUS_*)."""

    IDLE = 0
    LOADING = 1
    SAVING = 2


class SyncState(IntEnum):
    """The coarse state a status callback reports (beyond TinyBase; TB_SYNC_STATE_*)."""

    IDLE = 0
    SYNCING = 1
    ERROR = 2


class ConnectionState(IntEnum):
    """A synchronizer's connection (beyond TinyBase; TB_CONNECTION_*). ``NONE`` for
    synchronizers without a connection of their own (custom transports, local buses)."""

    NONE = 0
    CONNECTING = 1
    OPEN = 2
    CLOSED = 3


class Connection(NamedTuple):
    """A connection's state; ``close_code`` and ``close_reason`` are set when it is ``CLOSED``
    (1006 when the connection was lost or never opened), else 0 and None."""

    state: ConnectionState
    close_code: int
    close_reason: Optional[str]


class SyncStatusInfo(NamedTuple):
    """What an ``on_status`` callback receives (beyond TinyBase, for UIs): the sync state,
    requests waiting for a response, messages sent and received so far, the last ignored error
    while the state is ``ERROR``, and the connection (WebSocket synchronizers)."""

    state: SyncState
    pending_requests: int
    sends: int
    receives: int
    last_error: Optional[str]
    connection: Connection


class SyncMessage(IntEnum):
    """Protocol message types as TinyBase numbers them on the wire (TB_SYNC_MESSAGE_*)."""

    RESPONSE = 0
    GET_CONTENT_HASHES = 1
    CONTENT_HASHES = 2
    CONTENT_DIFF = 3
    GET_TABLE_DIFF = 4
    GET_ROW_DIFF = 5
    GET_CELL_DIFF = 6
    GET_VALUE_DIFF = 7


MessageHook = Callable[[Optional[str], Optional[str], int, str], Any]
ErrorHook = Callable[[str], Any]
StatusHook = Callable[[SyncStatusInfo], Any]
InitialContent = Union[None, str, bytes, Tuple[Any, Any], list]


def _dec(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "surrogatepass")


class _SyncRecord:
    """What native code's user_data keys map to (one registry entry per native user_data)."""

    __slots__ = ("send", "on_send", "on_receive", "on_ignored_error", "on_status")

    def __init__(self, send: Any, on_send: Any, on_receive: Any, on_ignored_error: Any, on_status: Any = None) -> None:
        self.send = send
        self.on_send = on_send
        self.on_receive = on_receive
        self.on_ignored_error = on_ignored_error
        self.on_status = on_status


# Module-level trampolines: alive as long as the module, so no ctypes pointer can dangle.


@_native.tb_sync_send_fn
def _send_trampoline(user_data: Optional[int], to: Optional[bytes], payload: Optional[int], length: int) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        if rec is None:
            return
        fn = rec.send
        fn(_dec(to), string_at(payload, length).decode("utf-8", "surrogatepass"))
    except BaseException as e:  # noqa: BLE001 - nothing may cross into native code
        _report(e, fn)


@_native.tb_sync_send_frame_fn
def _send_frame_trampoline(user_data: Optional[int], frame: Optional[int], length: int) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        if rec is None:
            return
        fn = rec.send
        fn(string_at(frame, length).decode("utf-8", "surrogatepass"))
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)


def _message_hook(attr: str) -> Any:
    def hook(user_data: Optional[int], client: Optional[bytes], request: Optional[bytes], message: int, body: Optional[int], length: int) -> None:
        fn = None
        try:
            rec = _callbacks.get(user_data or 0)
            fn = getattr(rec, attr, None)
            if fn is None:
                return
            fn(_dec(client), _dec(request), int(message), string_at(body, length).decode("utf-8", "surrogatepass"))
        except BaseException as e:  # noqa: BLE001
            _report(e, fn)

    return _native.tb_sync_message_fn(hook)


_on_send_trampoline = _message_hook("on_send")
_on_receive_trampoline = _message_hook("on_receive")


@_native.tb_sync_error_fn
def _on_ignored_error_trampoline(user_data: Optional[int], error: Optional[bytes]) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        fn = getattr(rec, "on_ignored_error", None)
        if fn is None:
            return
        fn(_dec(error) or "")
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)


def _connection(state: int, code: int, reason: Optional[str]) -> Connection:
    closed = state == ConnectionState.CLOSED
    return Connection(ConnectionState(state), int(code) if closed else 0, (reason or "") if closed else None)


def _read_connection(call: Callable[..., Any]) -> Connection:
    """A connection state read by ``call(state*, close_code*, close_reason**)`` (raising on
    failure), the close reason taken from the library."""
    state, code, reason = c_uint32(), c_uint16(), c_void_p()
    call(byref(state), byref(code), byref(reason))
    return _connection(state.value, code.value, _take_string(reason) if reason.value else None)


@_native.tb_sync_status_fn
def _on_status_trampoline(user_data: Optional[int], info: Any) -> None:
    fn = None
    try:
        rec = _callbacks.get(user_data or 0)
        fn = getattr(rec, "on_status", None)
        if fn is None or not info:
            return
        i = info.contents
        fn(
            SyncStatusInfo(
                SyncState(i.state),
                int(i.pending_requests),
                int(i.sends),
                int(i.receives),
                _dec(i.last_error),
                _connection(i.connection, i.close_code, _dec(i.close_reason)),
            )
        )
    except BaseException as e:  # noqa: BLE001
        _report(e, fn)


def _seconds(v: Optional[float], what: str) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(v).__name__}")
    return float(v)


def _check_callable(fn: Any, what: str) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(f"{what} must be callable")


def _count(v: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if v < 0:
        raise ValueError(f"{what} must not be negative")
    return v


def _options(
    request_timeout_seconds: Optional[float],
    anti_entropy_seconds: Optional[float],
    on_send: Optional[MessageHook],
    on_receive: Optional[MessageHook],
    on_ignored_error: Optional[ErrorHook],
    inbox_max_payloads: int = 0,
    inbox_max_bytes: int = 0,
    on_status: Optional[StatusHook] = None,
    o: Optional[tb_synchronizer_options] = None,
) -> Tuple[tb_synchronizer_options, Optional[int]]:
    """The C options (filled into ``o`` when given), and the registry key of the hooks (None
    when there are none). The key is registered here: the caller pops it when the creating call
    fails."""
    for fn, what in ((on_send, "on_send"), (on_receive, "on_receive"), (on_ignored_error, "on_ignored_error"), (on_status, "on_status")):
        _check_callable(fn, what)
    if o is None:
        o = tb_synchronizer_options()
    o.request_timeout_seconds = _seconds(request_timeout_seconds, "request_timeout_seconds")
    o.anti_entropy_seconds = _seconds(anti_entropy_seconds, "anti_entropy_seconds")
    o.inbox_max_payloads = _count(inbox_max_payloads, "inbox_max_payloads")
    o.inbox_max_bytes = _count(inbox_max_bytes, "inbox_max_bytes")
    key = None
    if on_send is not None or on_receive is not None or on_ignored_error is not None or on_status is not None:
        key = _register(_SyncRecord(None, on_send, on_receive, on_ignored_error, on_status))
        if on_send is not None:
            o.on_send = _on_send_trampoline
        if on_receive is not None:
            o.on_receive = _on_receive_trampoline
        if on_ignored_error is not None:
            o.on_ignored_error = _on_ignored_error_trampoline
        if on_status is not None:
            o.on_status = _on_status_trampoline
        o.user_data = key
        o.release = _release_trampoline
    return o, key


def _initial(content: InitialContent) -> Optional[bytes]:
    if content is None:
        return None
    if isinstance(content, (str, bytes, bytearray)):
        return _text(content, "initial_content")
    return _dumps(list(content))


class Synchronizer(Closable):
    """A synchronizer (TinyBase's Synchronizer) for one :class:`MergeableStore`; created by
    :class:`CustomSynchronizer` or :meth:`LocalBus.create_synchronizer`.

    It starts stopped: call :meth:`start_sync`. Methods are TinyBase's in snake_case;
    ``start_sync``, ``load`` and ``start_auto_load`` block (with the GIL released) until the
    initial load has finished (up to the request timeout, a few times at most, when no peer
    answers); the other commands block briefly. :meth:`destroy` stops it (idempotent; stats and
    status stay readable), :meth:`close` (or ``with``, or garbage collection) also frees it and
    releases its Python callbacks.
    """

    def __init__(self) -> None:  # pragma: no cover - use the factories
        raise TypeError("use tinybase.CustomSynchronizer(...) or LocalBus.create_synchronizer(...)")

    def _setup(self, ptr: int, store: MergeableStore) -> None:
        self._h = NativeHandle(ptr, lib.tb_synchronizer_free, "synchronizer")
        self._store = store

    # ---- handle bookkeeping (NativeHandle): the pointer is freed only when no call uses it ----

    def _enter(self) -> Optional[int]:
        return self._h.try_enter()

    def _leave(self) -> None:
        self._h.leave()

    def _call(self, fn: Any, *args: Any) -> None:
        p = self._h.enter()
        try:
            st = fn(p, *args)
        finally:
            self._h.leave()
        if st:
            _raise(st)

    @property
    def store(self) -> MergeableStore:
        """The store this synchronizer synchronizes."""
        return self._store

    @property
    def closed(self) -> bool:
        h = getattr(self, "_h", None)
        return h is None or h.closed

    # ---- inbound messages (any thread, never blocks) ----

    def receive(self, from_client_id: str, message_json: Union[str, bytes, list]) -> None:
        """Hands a payload ``[requestId, message, body]`` (JSON text in TinyBase's wire
        encoding, or a list that is serialized as such) received from ``from_client_id``.
        Any thread, including inside callbacks; never blocks. Invalid payloads are reported
        through ``on_ignored_error`` and never applied. Ignored after :meth:`destroy` and
        :meth:`close` (a transport thread may still be delivering). When the inbox is full
        (``inbox_max_payloads`` / ``inbox_max_bytes``) the payload is refused at once:
        :class:`InvalidStateError` here, ``on_ignored_error`` gets ``"tinybase:15:inbox"``, and
        :meth:`get_inbox_stats` counts it; the next load (anti-entropy) repairs it."""
        frm = _id(from_client_id, "from_client_id")
        payload = js_dumps(list(message_json)).encode("utf-8", "surrogatepass") if isinstance(message_json, (list, tuple)) else _text(message_json, "message_json")
        p = self._enter()
        if p is None:
            return
        try:
            st = lib.tb_synchronizer_receive(p, frm, payload)
        finally:
            self._leave()
        if st:
            _raise(st)

    def receive_framed(self, frame: Union[str, bytes]) -> None:
        """Hands a frame ``fromClientId\\n[requestId, message, body]`` (TinyBase's WebSocket
        form) to the synchronizer, as :meth:`receive`. :class:`InvalidShapeError` when there is
        no newline."""
        data = _text(frame, "frame")
        p = self._enter()
        if p is None:
            return
        try:
            st = lib.tb_synchronizer_receive_framed(p, data)
        finally:
            self._leave()
        if st:
            _raise(st)

    # ---- commands ----

    def start_sync(self, initial_content: InitialContent = None) -> "Synchronizer":
        """startSync: auto-load (pull from whichever peer answers first; ``initial_content``,
        ``(tables, values)`` or its JSON text, becomes default content when none does), then
        auto-save. Blocks until the initial load has finished."""
        self._call(lib.tb_synchronizer_start_sync, _initial(initial_content))
        return self

    def stop_sync(self) -> "Synchronizer":
        self._call(lib.tb_synchronizer_stop_sync)
        return self

    def load(self, initial_content: InitialContent = None) -> "Synchronizer":
        """load: pulls the first answering peer's changes once (blocks until done)."""
        self._call(lib.tb_synchronizer_load, _initial(initial_content))
        return self

    def save(self) -> "Synchronizer":
        """save: announces this store's content hashes once."""
        self._call(lib.tb_synchronizer_save)
        return self

    def start_auto_load(self, initial_content: InitialContent = None) -> "Synchronizer":
        self._call(lib.tb_synchronizer_start_auto_load, _initial(initial_content))
        return self

    def stop_auto_load(self) -> "Synchronizer":
        self._call(lib.tb_synchronizer_stop_auto_load)
        return self

    def start_auto_save(self) -> "Synchronizer":
        self._call(lib.tb_synchronizer_start_auto_save)
        return self

    def stop_auto_save(self) -> "Synchronizer":
        self._call(lib.tb_synchronizer_stop_auto_save)
        return self

    # ---- state ----

    def get_status(self) -> SyncStatus:
        out = c_uint32()
        self._call(lib.tb_synchronizer_get_status, byref(out))
        return SyncStatus(out.value)

    def get_connection(self) -> Connection:
        """Beyond TinyBase: the synchronizer's connection (state, and the close code and reason
        when closed). ``ConnectionState.NONE`` for synchronizers without a connection of their
        own."""
        return _read_connection(lambda *outs: self._call(lib.tb_synchronizer_get_connection_state, *outs))

    @property
    def connection_state(self) -> ConnectionState:
        """Beyond TinyBase: ``get_connection().state``."""
        return self.get_connection().state

    def get_synchronizer_stats(self) -> Dict[str, int]:
        """getSynchronizerStats: ``{"sends": n, "receives": n}`` (protocol messages sent,
        valid messages received)."""
        sends, receives = c_uint64(), c_uint64()
        self._call(lib.tb_synchronizer_get_stats, byref(sends), byref(receives))
        return {"sends": int(sends.value), "receives": int(receives.value)}

    def get_inbox_stats(self) -> Dict[str, int]:
        """Beyond TinyBase: ``{"queued_payloads": n, "queued_bytes": n, "refused_payloads":
        n}`` (received payloads waiting for the worker, their bytes, payloads refused so far
        because the inbox was full)."""
        queued, size, refused = c_size_t(), c_size_t(), c_uint64()
        self._call(lib.tb_synchronizer_get_inbox_stats, byref(queued), byref(size), byref(refused))
        return {"queued_payloads": int(queued.value), "queued_bytes": int(size.value), "refused_payloads": int(refused.value)}

    def is_idle(self) -> bool:
        """Whether nothing is queued, running or waiting for a response right now (messages
        still inside your transport are not seen). True after destroy."""
        out = c_bool()
        self._call(lib.tb_synchronizer_is_idle, byref(out))
        return bool(out.value)

    def is_settled(self) -> bool:
        """Whether the worker has handled everything queued so far (a local transaction's
        ContentDiff has been handed to ``send``), even if requests still wait for responses."""
        out = c_bool()
        self._call(lib.tb_synchronizer_is_settled, byref(out))
        return bool(out.value)

    def wait_for_idle(self, timeout: float = 10.0) -> bool:
        """Waits (GIL released) until the synchronizer has stayed idle briefly; False when
        ``timeout`` seconds passed first. Not from inside its own callbacks."""
        out = c_bool()
        self._call(lib.tb_synchronizer_wait_for_idle, _seconds(timeout, "timeout"), byref(out))
        return bool(out.value)

    # ---- lifetime ----

    def destroy(self) -> None:
        """destroy: fails pending requests, stops syncing, leaves the bus and stops the worker
        thread; afterwards no callback of it runs. Idempotent (also after :meth:`close`).
        Raises :class:`InvalidStateError` from inside one of its own callbacks."""
        p = self._enter()
        if p is None:
            return
        try:
            st = lib.tb_synchronizer_destroy(p)
        finally:
            self._leave()
        if st:
            _raise(st)

    def close(self) -> None:
        """Destroys and frees the synchronizer, releasing its Python callbacks (idempotent).
        When other threads are still inside a call on it, the free happens when the last one
        returns; from inside one of its own callbacks, once that callback has returned."""
        h = getattr(self, "_h", None)
        if h is not None:
            # destroy stops the worker and makes in-flight blocking calls (start_sync ...)
            # return. From inside this synchronizer's own callback it fails (INVALID_STATE) and
            # the library defers the free until the callback has returned.
            h.close(lib.tb_synchronizer_destroy)

    def __repr__(self) -> str:
        return f"<tinybase.{type(self).__name__}{' closed' if self.closed else ''}>"


class CustomSynchronizer(Synchronizer):
    """createCustomSynchronizer: TinyBase's protocol over a transport you provide.

    ``send(to_client_id, payload_json)`` delivers ``payload_json`` (JSON text
    ``[requestId, message, body]`` in TinyBase's wire encoding) to the client ``to_client_id``,
    or to every other client when it is ``None``; with ``framed=True`` it is ``send(frame)``
    with TinyBase's WebSocket frame ``toClientId\\n[...]`` (empty id: every other client). Push
    what arrives with :meth:`receive` / :meth:`receive_framed` from any thread.

    **``send`` runs on the synchronizer's worker thread** (a library thread), never concurrently
    with itself, with no store lock held: hand the payload over and return quickly. It may call
    ``receive`` of any synchronizer and store methods, but must not close or destroy
    synchronizers and should not call the blocking commands. The hooks ``on_send(to,
    request_id, message, body_json)``, ``on_receive(from, request_id, message, body_json)``
    and ``on_ignored_error(error)`` (TinyBase's onSend / onReceive / onIgnoredError; ``message``
    a :class:`SyncMessage` number, ``body_json`` the body as JSON text) run there too.
    Exceptions raised by any of them are reported, never propagated.

    ``request_timeout_seconds`` is TinyBase's requestTimeoutSeconds; ``anti_entropy_seconds``
    (beyond TinyBase, off with 0) re-announces the content hashes and pulls from a peer this
    often while auto-saving, so a lost or never-sent message is repaired without a restart;
    recommended whenever TinyBase peers take part. ``inbox_max_payloads`` and
    ``inbox_max_bytes`` (beyond TinyBase; 0 is the default, 10,000 payloads and 64 MiB) bound
    the received payloads waiting for the worker: beyond them :meth:`receive` refuses.
    ``on_status(info)`` (beyond TinyBase) gets a :class:`SyncStatusInfo` on the worker thread
    whenever the sync state (idle, syncing, error) changes.
    """

    def __init__(
        self,
        store: MergeableStore,
        send: Callable[..., Any],
        request_timeout_seconds: float = 1.0,
        *,
        framed: bool = False,
        anti_entropy_seconds: float = 0.0,
        on_send: Optional[MessageHook] = None,
        on_receive: Optional[MessageHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        inbox_max_payloads: int = 0,
        inbox_max_bytes: int = 0,
        on_status: Optional[StatusHook] = None,
    ) -> None:
        if not isinstance(store, MergeableStore):
            raise TypeError("a synchronizer needs a MergeableStore")
        if not callable(send):
            raise TypeError("send must be callable")
        opts, okey = _options(request_timeout_seconds, anti_entropy_seconds, on_send, on_receive, on_ignored_error, inbox_max_payloads, inbox_max_bytes, on_status)
        tkey = _register(_SyncRecord(send, None, None, None))
        out = c_void_p()
        st = -1
        try:
            m = store._h.enter()
            try:
                if framed:
                    st = lib.tb_synchronizer_new_custom_framed(m, _send_frame_trampoline, tkey, _release_trampoline, byref(opts), byref(out))
                else:
                    st = lib.tb_synchronizer_new_custom(m, _send_trampoline, tkey, _release_trampoline, byref(opts), byref(out))
            finally:
                store._h.leave()
        finally:
            if st:  # not taken over on failure: neither release will be called
                _callbacks.pop(tkey, None)
                if okey is not None:
                    _callbacks.pop(okey, None)
        if st:
            _raise(st)
        self.framed = bool(framed)
        self._setup(out.value, store)  # type: ignore[arg-type]


@hold_calls
class LocalBus(Closable):
    """An in-process bus (TinyBase's LocalSynchronizer medium): every synchronizer created on
    the same bus reaches the others. ``BroadcastChannel.open(name)`` gives the bus of a named
    channel. Close the handle with :meth:`close` (synchronizers on it keep working until they
    are closed themselves)."""

    def __init__(self) -> None:
        out = c_void_p()
        _check(lib.tb_local_bus_new(byref(out)))
        self._ptr: Optional[int] = out.value
        self._h = NativeHandle(out.value, lib.tb_local_bus_free, "bus")

    @classmethod
    def _wrap(cls, ptr: int) -> "LocalBus":
        b = cls.__new__(cls)
        b._ptr = ptr
        b._h = NativeHandle(ptr, lib.tb_local_bus_free, "bus")
        return b

    def _p(self) -> int:
        p = self._ptr
        if p is None:
            raise ClosedError("bus is closed")
        return p

    def create_synchronizer(
        self,
        store: MergeableStore,
        request_timeout_seconds: Optional[float] = None,
        *,
        anti_entropy_seconds: float = 0.0,
        on_send: Optional[MessageHook] = None,
        on_receive: Optional[MessageHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        inbox_max_payloads: int = 0,
        inbox_max_bytes: int = 0,
        on_status: Optional[StatusHook] = None,
    ) -> Synchronizer:
        """createLocalSynchronizer: a synchronizer for ``store`` on this bus (random client id).
        ``request_timeout_seconds`` None is TinyBase's 0.01 s (timeouts on a busy machine are
        ignored errors; peers still converge). Hooks as for :class:`CustomSynchronizer`."""
        if not isinstance(store, MergeableStore):
            raise TypeError("a synchronizer needs a MergeableStore")
        opts, okey = _options(request_timeout_seconds, anti_entropy_seconds, on_send, on_receive, on_ignored_error, inbox_max_payloads, inbox_max_bytes, on_status)
        out = c_void_p()
        st = -1
        try:
            m = store._h.enter()
            try:
                st = lib.tb_local_bus_create_synchronizer(self._p(), m, byref(opts), byref(out))
            finally:
                store._h.leave()
        finally:
            if st and okey is not None:
                _callbacks.pop(okey, None)
        if st:
            _raise(st)
        s = Synchronizer.__new__(Synchronizer)
        s._setup(out.value, store)  # type: ignore[arg-type]
        return s

    def wait_for_idle(self, timeout: float = 10.0) -> bool:
        """Waits (GIL released) until every synchronizer on the bus has stayed idle briefly;
        False when ``timeout`` seconds passed first."""
        out = c_bool()
        _check(lib.tb_local_bus_wait_for_idle(self._p(), _seconds(timeout, "timeout"), byref(out)))
        return bool(out.value)

    def close(self) -> None:
        """Releases this bus handle (idempotent; later calls raise :class:`ClosedError`; freed
        when calls in flight on other threads have returned)."""
        self._ptr = None
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    @property
    def closed(self) -> bool:
        return self._ptr is None


class BroadcastChannel:
    """Named in-process channels (TinyBase's BroadcastChannelSynchronizer medium)."""

    def __init__(self) -> None:  # pragma: no cover
        raise TypeError("use BroadcastChannel.open(name)")

    @staticmethod
    def open(name: str) -> LocalBus:
        """The bus of the channel ``name``: every store whose synchronizer is created on a bus
        opened with the same name syncs with the others."""
        n = _id(name, "name")
        out = c_void_p()
        _check(lib.tb_broadcast_channel_open(n, byref(out)))
        return LocalBus._wrap(out.value)  # type: ignore[arg-type]



def _header_lines(headers: Union[None, Mapping[str, str], Iterable[Any]]) -> list:
    """``"Name: value"`` lines from a mapping, (name, value) pairs or ready-made lines."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    if isinstance(items, (str, bytes)):
        raise TypeError("headers must be a mapping or a list of (name, value) pairs or 'Name: value' strings")
    out = []
    for h in items:
        if isinstance(h, str):
            line = h
        elif isinstance(h, tuple) and len(h) == 2 and all(isinstance(x, str) for x in h):
            line = f"{h[0]}: {h[1]}"
        else:
            raise TypeError(f"a header must be a (name, value) pair of str or a 'Name: value' str, not {h!r}")
        out.append(_text(line, "header"))
    return out


def _ws_options(
    fragment_size: Optional[int],
    reconnect: bool,
    reconnect_min_seconds: Optional[float],
    reconnect_max_seconds: Optional[float],
    ping_interval_seconds: Optional[float],
    connect_timeout_seconds: Optional[float],
    ca_file: Any,
    headers: Any,
) -> Tuple[tb_ws_synchronizer_options, Any]:
    """The C WebSocket options but the channel and the synchronizer's options, and what must stay
    alive for the creating call (the header array)."""
    if not isinstance(reconnect, bool):
        raise TypeError("reconnect must be a bool")
    if fragment_size is not None and _count(fragment_size, "fragment_size") == 0:
        raise ValueError("fragment_size must be positive (None: no fragmentation)")
    o = tb_ws_synchronizer_options()
    o.fragment_size = fragment_size or 0
    o.no_reconnect = not reconnect
    o.reconnect_min_seconds = _seconds(reconnect_min_seconds, "reconnect_min_seconds")
    o.reconnect_max_seconds = _seconds(reconnect_max_seconds, "reconnect_max_seconds")
    o.ping_interval_seconds = _seconds(ping_interval_seconds, "ping_interval_seconds")
    o.connect_timeout_seconds = _seconds(connect_timeout_seconds, "connect_timeout_seconds")
    o.ca_file = None if ca_file is None else _text(os.fspath(ca_file), "ca_file")
    lines = _header_lines(headers)
    keep = (c_char_p * max(len(lines), 1))(*lines)
    o.headers = keep
    o.header_count = len(lines)
    return o, keep


def _new_ws(store: MergeableStore, okey: Optional[int], create: Callable[[int, Any], int]) -> int:
    """Runs ``create(store_ptr, out)``; pops the hooks' key when it fails (the library then
    never releases them) and raises. Returns the new synchronizer pointer."""
    out = c_void_p()
    st = -1
    try:
        m = store._h.enter()
        try:
            st = create(m, byref(out))
        finally:
            store._h.leave()
    finally:
        if st and okey is not None:
            _callbacks.pop(okey, None)
    if st:
        _raise(st)
    return out.value  # type: ignore[return-value]


class WsSynchronizer(Synchronizer):
    """createWsSynchronizer: TinyBase's protocol through a WebSocket server (TinyBase's
    ``WsServer``, or ``tinybase-server``) at ``url`` (``ws://`` or ``wss://``).

    ``channel_id`` None speaks TinyBase's legacy framing (one store per socket, the room is the
    URL's path); a channel id uses the multiplexed protocol (subprotocol ``tinybase``) on a
    socket of its own (:class:`WsClient` shares one socket between stores).
    ``fragment_size`` cuts outgoing payloads into fragments of that many bytes (None: never);
    incoming fragments are always reassembled. ``reconnect`` (beyond TinyBase, on by default):
    a lost connection is re-opened with backoff and jitter (``reconnect_min_seconds`` ..
    ``reconnect_max_seconds``) and the store pulls again after each re-open. With
    ``reconnect=False`` the constructor waits for the socket to open and raises
    :class:`InvalidStateError` when it cannot; with ``reconnect=True`` it returns after the
    first attempt and keeps trying in the background. ``ping_interval_seconds``: how often the
    server is pinged (a dead one is noticed and the socket re-opened);
    ``connect_timeout_seconds`` bounds each attempt; ``ca_file`` (a PEM file) adds private CAs
    to the built-in roots for ``wss://``; ``headers`` (a mapping, (name, value) pairs or
    ``"Name: value"`` strings, e.g. ``{"Authorization": "Bearer ..."}``) go with the upgrade
    request. None or 0 means the library's default for every duration.

    Everything else is as for :class:`CustomSynchronizer` (hooks run on the worker thread;
    ``on_status`` also runs when the connection opens, closes or starts reconnecting). It starts
    stopped: call :meth:`start_sync`. :meth:`destroy` closes the socket cleanly (1000);
    :meth:`close` (or ``with``) also frees it. :attr:`connection_state` and
    :meth:`get_connection` tell the connection's state.
    """

    url: str
    channel_id: Optional[str]

    def __init__(
        self,
        store: MergeableStore,
        url: str,
        channel_id: Optional[str] = None,
        request_timeout_seconds: Optional[float] = 1.0,
        fragment_size: Optional[int] = None,
        reconnect: bool = True,
        anti_entropy_seconds: Optional[float] = 0.0,
        *,
        reconnect_min_seconds: Optional[float] = None,
        reconnect_max_seconds: Optional[float] = None,
        ping_interval_seconds: Optional[float] = None,
        connect_timeout_seconds: Optional[float] = None,
        ca_file: Union[None, str, "os.PathLike[str]"] = None,
        headers: Union[None, Mapping[str, str], Iterable[Any]] = None,
        on_send: Optional[MessageHook] = None,
        on_receive: Optional[MessageHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        on_status: Optional[StatusHook] = None,
        inbox_max_payloads: int = 0,
        inbox_max_bytes: int = 0,
    ) -> None:
        if not isinstance(store, MergeableStore):
            raise TypeError("a synchronizer needs a MergeableStore")
        u = _id(url, "url")
        o, keep = _ws_options(fragment_size, reconnect, reconnect_min_seconds, reconnect_max_seconds, ping_interval_seconds, connect_timeout_seconds, ca_file, headers)
        o.channel_id = None if channel_id is None else _id(channel_id, "channel_id")
        # Last: it registers the hooks, which _new_ws pops when creation fails.
        _, okey = _options(request_timeout_seconds, anti_entropy_seconds, on_send, on_receive, on_ignored_error, inbox_max_payloads, inbox_max_bytes, on_status, o=o.sync)
        ptr = _new_ws(store, okey, lambda m, out: lib.tb_ws_synchronizer_new(m, u, byref(o), out))
        del keep
        self.url = url
        self.channel_id = channel_id
        self._setup(ptr, store)


@hold_calls
class WsClient(Closable):
    """A multiplexed WebSocket connection (subprotocol ``tinybase``) shared by several stores:
    each :meth:`create_synchronizer` joins a channel over the same socket. The socket opens when
    the first synchronizer joins and closes (1000) when the last one is destroyed. Connection
    options as for :class:`WsSynchronizer`. :meth:`close` (or ``with``) releases this handle;
    synchronizers created on it keep working until they are closed themselves."""

    def __init__(
        self,
        url: str,
        fragment_size: Optional[int] = None,
        reconnect: bool = True,
        *,
        reconnect_min_seconds: Optional[float] = None,
        reconnect_max_seconds: Optional[float] = None,
        ping_interval_seconds: Optional[float] = None,
        connect_timeout_seconds: Optional[float] = None,
        ca_file: Union[None, str, "os.PathLike[str]"] = None,
        headers: Union[None, Mapping[str, str], Iterable[Any]] = None,
    ) -> None:
        u = _id(url, "url")
        o, keep = _ws_options(fragment_size, reconnect, reconnect_min_seconds, reconnect_max_seconds, ping_interval_seconds, connect_timeout_seconds, ca_file, headers)
        out = c_void_p()
        _check(lib.tb_ws_client_new(u, byref(o), byref(out)))
        del keep
        self.url = url
        self._h = NativeHandle(out.value, lib.tb_ws_client_free, "WebSocket client")  # type: ignore[arg-type]

    def create_synchronizer(
        self,
        store: MergeableStore,
        channel_id: str,
        request_timeout_seconds: Optional[float] = 1.0,
        anti_entropy_seconds: Optional[float] = 0.0,
        *,
        on_send: Optional[MessageHook] = None,
        on_receive: Optional[MessageHook] = None,
        on_ignored_error: Optional[ErrorHook] = None,
        on_status: Optional[StatusHook] = None,
        inbox_max_payloads: int = 0,
        inbox_max_bytes: int = 0,
    ) -> WsSynchronizer:
        """A :class:`WsSynchronizer` for ``store`` on channel ``channel_id`` of this connection
        (an invalid or taken channel id raises). Blocks and fails as :class:`WsSynchronizer`
        does for the connection, per this client's ``reconnect``."""
        if not isinstance(store, MergeableStore):
            raise TypeError("a synchronizer needs a MergeableStore")
        ch = _id(channel_id, "channel_id")
        opts, okey = _options(request_timeout_seconds, anti_entropy_seconds, on_send, on_receive, on_ignored_error, inbox_max_payloads, inbox_max_bytes, on_status)
        c = self._h._ptr
        ptr = _new_ws(store, okey, lambda m, out: lib.tb_ws_client_create_synchronizer(c, m, ch, byref(opts), out))
        s = WsSynchronizer.__new__(WsSynchronizer)
        s.url = self.url
        s.channel_id = channel_id
        s._setup(ptr, store)
        return s

    def get_connection(self) -> Connection:
        """The shared socket's state (open from the upgrade on; each synchronizer's own state
        is open once its channel is subscribed)."""
        return _read_connection(lambda *outs: _check(lib.tb_ws_client_get_connection_state(self._h._ptr, *outs)))

    @property
    def connection_state(self) -> ConnectionState:
        """``get_connection().state``."""
        return self.get_connection().state

    def close(self) -> None:
        """Releases this handle (idempotent; later calls raise :class:`ClosedError`)."""
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    @property
    def closed(self) -> bool:
        h = getattr(self, "_h", None)
        return h is None or h.closed

