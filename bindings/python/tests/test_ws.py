"""WebSocket synchronizers from Python, through a tinybase-server this module starts on
127.0.0.1 and a free port (killed at teardown whatever happens): two Python stores in a legacy
room, fragments, multiplexed channels over one shared socket (and isolation between channels),
the status callback and connection state, the context manager, a reconnect after the server
restarts, a Rust peer (examples/ws_peer.rs) in the same room, and misuse."""

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import tinybase
from tinybase import ConnectionState, SyncState, WsClient, WsSynchronizer

from conftest import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def _bin(name, env):
    path = os.environ.get(env) or os.path.join(REPO, "target", "release", name)
    if not os.path.isfile(path):
        pytest.fail(f"{path} is missing: build it (bindings/python/run_tests.sh does) or set {env}")
    return path


class Server:
    """tinybase-server on 127.0.0.1; ``start(port)`` waits for its ``listening`` line."""

    def __init__(self):
        self.bin = _bin("tinybase-server", "TB_SERVER_BIN")
        self.data = tempfile.mkdtemp(prefix="tb-ws-py-")
        self.proc = None
        self.port = 0

    def start(self, port=0):
        self.proc = subprocess.Popen(
            [self.bin, "--listen", f"127.0.0.1:{port}", "--data", self.data],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines = queue.Queue()

        def read(out):  # also keeps the pipe drained for the server's life
            for line in out:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            if "listening" in line:
                nums = re.findall(r"\d+", line)  # the port is the last number of the line
                if nums:
                    self.port = int(nums[-1])
                    return self.port
        self.stop()
        pytest.fail("tinybase-server printed no listening line")

    def url(self, path="/"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    s = Server()
    try:
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture
def own_server():
    """A server of the test's own (the test stops and restarts it)."""
    s = Server()
    try:
        s.start()
        yield s
    finally:
        s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Statuses:
    """Collects what on_status reports, from the worker thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.infos = []

    def __call__(self, info):
        with self.lock:
            self.infos.append(info)

    def connections(self):
        out = []
        with self.lock:
            for i in self.infos:
                if not out or out[-1] != i.connection.state:
                    out.append(i.connection.state)
        return out


def in_order(seen, want):
    it = iter(seen)
    return all(any(s == w for s in it) for w in want)


BACKOFF = dict(reconnect_min_seconds=0.05, reconnect_max_seconds=0.5)
FAST = dict(request_timeout_seconds=2.0, **BACKOFF)


def test_two_stores_in_a_room(server, clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    a.set_cell("t", "before", "c", "from a")
    seen = Statuses()
    with WsSynchronizer(a, server.url("/py-legacy"), on_status=seen, headers={"X-Test": "py"}, **FAST) as sa, WsSynchronizer(
        b, server.url("/py-legacy"), reconnect=False, **FAST
    ) as sb:
        assert sb.connection_state == ConnectionState.OPEN  # reconnect=False waits for it
        assert wait_for(lambda: sa.connection_state == ConnectionState.OPEN)
        sa.start_sync()
        sb.start_sync()
        assert wait_for(lambda: b.get_cell("t", "before", "c") == "from a")
        b.set_cell("t", "after", "c", "from b")
        assert wait_for(lambda: a.get_cell("t", "after", "c") == "from b")
        assert wait_for(lambda: a.get_content() == b.get_content())
        stats = sa.get_synchronizer_stats()
        assert stats["sends"] > 0 and stats["receives"] > 0
        assert sa.wait_for_idle(10)
        # CONNECTING then OPEN; a report carries the state when it runs, so one made after the
        # socket opened says OPEN (CONNECTING may be missed, but nothing else comes first).
        c = seen.connections()
        assert ConnectionState.OPEN in c and all(x == ConnectionState.CONNECTING for x in c[: c.index(ConnectionState.OPEN)])
        assert all(isinstance(i.state, SyncState) for i in seen.infos)
        sa.stop_sync()
        sa.destroy()
        c = sa.get_connection()
        assert c.state == ConnectionState.CLOSED and c.close_code == 1000
        with pytest.raises(tinybase.InvalidStateError):
            sa.start_sync()
    assert sa.closed and sb.closed


def test_fragments(server, clean):
    a, b = tinybase.MergeableStore("fa"), tinybase.MergeableStore("fb")
    big = "x" * 50_000 + "é" * 1000
    with WsSynchronizer(a, server.url("/py-fragments"), fragment_size=100, **FAST) as sa, WsSynchronizer(
        b, server.url("/py-fragments"), fragment_size=4096, **FAST
    ) as sb:
        sa.start_sync()
        sb.start_sync()
        a.set_cell("t", "big", "c", big)
        assert wait_for(lambda: b.get_cell("t", "big", "c") == big)
        b.set_value("v", 1)
        assert wait_for(lambda: a.get_value("v") == 1)


def test_multiplexed_channels_over_one_socket(server, clean):
    x1, x2, y1, y2 = (tinybase.MergeableStore(n) for n in ("x1", "x2", "y1", "y2"))
    with WsClient(server.url("/py-mux"), **BACKOFF) as cx, WsClient(server.url("/py-mux"), reconnect=False, **BACKOFF) as cy:
        assert cx.connection_state in (ConnectionState.NONE, ConnectionState.CONNECTING, ConnectionState.CLOSED)
        sx1 = cx.create_synchronizer(x1, "one")
        sx2 = cx.create_synchronizer(x2, "two")
        sy1 = cy.create_synchronizer(y1, "one")
        sy2 = cy.create_synchronizer(y2, "two", request_timeout_seconds=2.0)
        with sx1, sx2, sy1, sy2:
            assert wait_for(lambda: cx.connection_state == ConnectionState.OPEN)
            with pytest.raises(tinybase.TinyBaseError):
                cx.create_synchronizer(tinybase.MergeableStore(), "one")  # the channel is taken
            for s in (sx1, sx2, sy1, sy2):
                s.start_sync()
            x1.set_cell("t", "r", "c", "channel one")
            x2.set_cell("t", "r", "c", "channel two")
            assert wait_for(lambda: y1.get_cell("t", "r", "c") == "channel one")
            assert wait_for(lambda: y2.get_cell("t", "r", "c") == "channel two")
            y2.set_value("back", True)
            assert wait_for(lambda: x2.get_value("back") is True)
            time.sleep(0.2)
            assert not x1.has_value("back") and not y1.has_value("back")
        # Every synchronizer gone: the shared socket closes.
        assert wait_for(lambda: cx.connection_state in (ConnectionState.CLOSED, ConnectionState.NONE))


def test_context_manager_closes(server, clean):
    s = tinybase.MergeableStore()
    calls = []
    with WsSynchronizer(s, server.url("/py-ctx"), on_status=calls.append, **FAST) as sync:
        sync.start_sync()
        assert not sync.closed
    assert sync.closed
    with pytest.raises(tinybase.ClosedError):
        sync.start_sync()
    # No callback after close.
    n = len(calls)
    time.sleep(0.1)
    assert len(calls) == n


def test_reconnects_after_the_server_restarts(own_server, clean):
    a, b = tinybase.MergeableStore("ra"), tinybase.MergeableStore("rb")
    seen = Statuses()
    url = own_server.url("/py-reconnect")
    with WsSynchronizer(a, url, on_status=seen, anti_entropy_seconds=0.5, **FAST) as sa, WsSynchronizer(
        b, url, anti_entropy_seconds=0.5, **FAST
    ) as sb:
        sa.start_sync()
        sb.start_sync()
        a.set_cell("t", "one", "c", 1)
        assert wait_for(lambda: b.get_cell("t", "one", "c") == 1)
        port = own_server.port
        own_server.stop()
        assert wait_for(lambda: sa.connection_state != ConnectionState.OPEN)
        b.set_cell("t", "two", "c", 2)  # while the server is down
        assert own_server.start(port) == port
        assert wait_for(lambda: sa.connection_state == ConnectionState.OPEN, 15)
        assert wait_for(lambda: a.get_cell("t", "two", "c") == 2, 15)
        assert wait_for(lambda: a.get_content() == b.get_content(), 15)
        # Open, lost, open again (a report may skip a state that passed before it ran).
        c = seen.connections()
        assert in_order(c, [ConnectionState.OPEN, ConnectionState.CLOSED, ConnectionState.OPEN]) or in_order(c, [ConnectionState.OPEN, ConnectionState.CONNECTING, ConnectionState.OPEN])
        closed = [i for i in seen.infos if i.connection.state == ConnectionState.CLOSED]
        assert closed and all(i.connection.close_code > 0 and i.connection.close_reason is not None for i in closed)


def test_rust_peer_in_the_same_room(server, clean):
    """A Rust store (examples/ws_peer.rs: writes peers/rust/c0..c4, waits until the room is
    quiet, prints its content hashes) and a Python store converge through the server."""
    peer = _bin("examples/ws_peer", "TB_WS_PEER_BIN")
    s = tinybase.MergeableStore("py")
    with WsSynchronizer(s, server.url("/py-rust"), **FAST) as sync:
        sync.start_sync()
        s.set_cell("peers", "python", "c0", "from python")
        out = subprocess.run([peer, server.url("/py-rust"), "rust", "--cells", "5"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["cells"] == 6  # its five and ours
        assert wait_for(lambda: s.get_row("peers", "rust") == {f"c{i}": i for i in range(5)})
        assert wait_for(lambda: s.get_mergeable_content_hashes() == (report["tables_hash"], report["values_hash"]))


def test_misuse(server, clean):
    s = tinybase.MergeableStore()
    with pytest.raises(TypeError):
        WsSynchronizer(tinybase.Store(), server.url("/x"))
    with pytest.raises(TypeError):
        WsSynchronizer(s, None)
    with pytest.raises(tinybase.InvalidArgumentError):
        WsSynchronizer(s, "ws://127.0.0.1:1/\0")
    for bad in ("", "not a url", "http://127.0.0.1:1/", "ws://"):
        with pytest.raises(tinybase.TinyBaseError):
            WsSynchronizer(s, bad, on_status=lambda i: None)
    with pytest.raises(tinybase.InvalidUtf8Error):
        WsSynchronizer(s, "ws://127.0.0.1:1/\ud800")
    with pytest.raises(tinybase.InvalidArgumentError):
        WsSynchronizer(s, server.url("/x"), request_timeout_seconds=float("nan"), on_send=print)
    with pytest.raises(tinybase.InvalidArgumentError):
        WsSynchronizer(s, server.url("/x"), ping_interval_seconds=-1)
    with pytest.raises(TypeError):
        WsSynchronizer(s, server.url("/x"), reconnect="yes")
    with pytest.raises(ValueError):
        WsSynchronizer(s, server.url("/x"), fragment_size=0)
    with pytest.raises(TypeError):
        WsSynchronizer(s, server.url("/x"), on_status=3)
    with pytest.raises(TypeError):
        WsSynchronizer(s, server.url("/x"), headers="Authorization: x")
    with pytest.raises(tinybase.InvalidArgumentError):
        WsSynchronizer(s, server.url("/x"), headers=["no colon"])
    with pytest.raises(tinybase.TinyBaseError):
        WsSynchronizer(s, "wss://127.0.0.1:1/x", ca_file="/nonexistent/ca.pem", reconnect=False)
    # Nothing listens there: reconnect=False fails after one attempt.
    with pytest.raises(tinybase.InvalidStateError, match="tinybase:5"):
        WsSynchronizer(s, f"ws://127.0.0.1:{free_port()}/x", reconnect=False, connect_timeout_seconds=2, on_ignored_error=print)
    with pytest.raises(tinybase.TinyBaseError):
        WsClient("not a url")
    with WsClient(server.url("/x")) as c:
        with pytest.raises(TypeError):
            c.create_synchronizer(s, None)
        with pytest.raises(tinybase.TinyBaseError):
            c.create_synchronizer(s, "bad\nchannel")
    with pytest.raises(tinybase.ClosedError):
        c.create_synchronizer(s, "after-close")
    # Connection state of synchronizers without a connection of their own.
    bus = tinybase.LocalBus()
    with bus.create_synchronizer(s) as local:
        assert local.get_connection() == tinybase.Connection(ConnectionState.NONE, 0, None)
    bus.close()
