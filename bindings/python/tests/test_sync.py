"""Synchronizers from Python: custom transports made of Python callables and threads, local
buses, broadcast channels, faults, malformed input, callback errors, lifetimes, and the interop
hub (TinyBase peers against the Python peer tests/sync_peer.py)."""

import gc
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time

import pytest

import tinybase
from tinybase import _store

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SYNC_DIR = os.path.join(REPO, "tests", "interop", "sync")


def registry_size():
    return len(_store._callbacks)




class Net:
    """A star of Python peers: each peer's inbound messages go to its own queue, drained by its
    own Python thread that calls ``receive``. ``drop`` (0..1, seeded) loses messages."""

    def __init__(self, seed=1, framed=False):
        self.peers = {}  # name -> (sync, queue, thread)
        self.rng = random.Random(seed)
        self.drop = 0.0
        self.framed = framed
        self.lock = threading.Lock()
        self.in_flight = 0
        self.frames = []

    def deliver(self, sender, to, payload):
        with self.lock:
            targets = [n for n in self.peers if n != sender and (to is None or n == to)]
            for n in targets:
                if self.drop and self.rng.random() < self.drop:
                    continue
                self.in_flight += 1
                self.peers[n][1].put((sender, payload))

    def add(self, name, store, timeout=0.5, **kw):
        q = queue.Queue()
        if self.framed:

            def send(frame):
                self.frames.append(frame)
                to, payload = frame.split("\n", 1)
                self.deliver(name, to or None, payload)

        else:

            def send(to, payload):
                self.deliver(name, to, payload)

        sync = tinybase.CustomSynchronizer(store, send, timeout, framed=self.framed, **kw)

        def drain():
            while True:
                item = q.get()
                if item is None:
                    return
                sender, payload = item
                try:
                    if self.framed:
                        sync.receive_framed(sender + "\n" + payload)
                    else:
                        sync.receive(sender, payload)
                finally:
                    with self.lock:
                        self.in_flight -= 1

        t = threading.Thread(target=drain, name=f"net-{name}", daemon=True)
        with self.lock:
            self.peers[name] = (sync, q, t)
        t.start()
        return sync

    def settle(self, timeout=15.0):
        """Until no message is in a queue and every synchronizer stayed idle a few checks."""
        end = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < end:
            with self.lock:
                busy = self.in_flight
            if busy == 0 and all(s.is_idle() for s, _, _ in self.peers.values()):
                quiet += 1
                if quiet >= 5:
                    return True
            else:
                quiet = 0
            time.sleep(0.005)
        return False

    def close(self):
        for sync, q, t in self.peers.values():
            q.put(None)
        for sync, q, t in self.peers.values():
            t.join(5)
            sync.close()
        self.peers.clear()


def same(*stores):
    first = stores[0]
    for s in stores[1:]:
        assert s.get_content() == first.get_content()
        assert s.get_mergeable_content_hashes() == first.get_mergeable_content_hashes()


def converge(*stores, timeout=20.0):
    """Waits until every store has the same content hashes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len({st.get_mergeable_content_hashes() for st in stores}) == 1:
            break
        time.sleep(0.02)
    same(*stores)


def start_all(*syncs):
    """start_sync blocks until the initial load: start them concurrently."""
    threads = [threading.Thread(target=s.start_sync) for s in syncs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


# -- custom transports ------------------------------------------------------------------------


def test_two_python_peers_converge_before_during_after(clean):
    """Edits before the sync, on both sides concurrently while it starts, and after. Writes
    concurrent with the worker applying a peer's changes may not be broadcast (see
    test_concurrent_writes_without_anti_entropy), so anti-entropy is on for the concurrent
    phase; the "after" phase is serialized."""
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net()
    try:
        a.set_tables({"pets": {"fido": {"species": "dog", "legs": 4}}}).set_value("open", True)
        b.set_tables({"pets": {"felix": {"species": "cat"}, "fido": {"color": "brown"}}})
        sa, sb = net.add("A", a, anti_entropy_seconds=0.2), net.add("B", b, anti_entropy_seconds=0.2)
        writer_done = threading.Event()

        def write_during():
            for i in range(50):
                (a if i % 2 else b).set_cell("during", f"r{i}", "i", i)
            writer_done.set()

        w = threading.Thread(target=write_during)
        w.start()
        start_all(sa, sb)
        w.join()
        assert writer_done.is_set()
        converge(a, b)
        assert a.get_row_count("during") == 50
        # after: conflicting writes (the later clock wins on both sides), then more edits
        sa.stop_sync()
        sb.stop_sync()
        assert net.settle()
        sa.start_sync()
        sb.start_sync()
        assert net.settle()
        a.set_cell("pets", "fido", "color", "white")
        assert net.settle()
        b.set_cell("pets", "fido", "color", "black")
        assert net.settle()
        with a.transaction():
            a.set_row("pets", "rex", {"species": "dog"})
            a.del_value("open")
        assert net.settle()
        b.set_values({"closed": 1})
        assert net.settle()
        same(a, b)
        assert a.get_row("pets", "rex") == {"species": "dog"}
        assert a.get_values() == {"closed": 1}
        assert a.get_cell("pets", "fido", "color") == "black"
    finally:
        net.close()
        a.close()
        b.close()


def test_object_cells_and_deletions(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net()
    try:
        sa, sb = net.add("A", a), net.add("B", b)
        start_all(sa, sb)
        assert net.settle()
        a.set_row("t", "r", {"obj": {"x": [1, 2, {"y": None}], "z": "s"}, "arr": [True, 1.5, "q"], "n": None})
        assert net.settle()
        b.set_value("cfg", {"theme": "dark", "sizes": [1, 2]})
        assert net.settle()
        same(a, b)
        assert b.get_cell("t", "r", "obj") == {"x": [1, 2, {"y": None}], "z": "s"}
        assert b.get_cell("t", "r", "arr") == [True, 1.5, "q"]
        assert b.get_cell("t", "r", "n") is None
        assert a.get_value("cfg") == {"theme": "dark", "sizes": [1, 2]}
        b.del_cell("t", "r", "arr")
        assert net.settle()
        a.del_value("cfg")
        assert net.settle()
        same(a, b)
        assert a.get_cell("t", "r", "arr") is tinybase.ABSENT
        assert not b.has_value("cfg")
        a.del_row("t", "r")
        assert net.settle()
        same(a, b)
        assert b.get_tables() == {}
        a.set_cell("t2", "r", "c", 1)
        assert net.settle()
        b.del_tables()
        assert net.settle()
        same(a, b)
    finally:
        net.close()
        a.close()
        b.close()


def test_stats_status_and_idle(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net()
    try:
        sa, sb = net.add("A", a), net.add("B", b)
        assert sa.get_synchronizer_stats() == {"sends": 0, "receives": 0}
        assert sa.get_status() == tinybase.SyncStatus.IDLE
        assert sa.is_idle() and sa.wait_for_idle(1.0)
        a.set_cell("t", "r", "c", 1)
        start_all(sa, sb)
        assert net.settle()
        for i in range(5):
            a.set_cell("t", "r", "c", i + 10)
        assert net.settle()
        same(a, b)
        stats_a, stats_b = sa.get_synchronizer_stats(), sb.get_synchronizer_stats()
        assert set(stats_a) == {"sends", "receives"}
        # Two peers, nothing lost, nothing invalid: what one sends the other receives.
        assert stats_a["sends"] == stats_b["receives"] > 5
        assert stats_b["sends"] == stats_a["receives"] > 0
        assert sa.get_status() == tinybase.SyncStatus.IDLE
        assert sa.wait_for_idle(2.0)
    finally:
        net.close()
        a.close()
        b.close()


def test_hooks_on_send_on_receive(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    sent, received = [], []
    net = Net()
    try:
        sa = net.add("A", a, on_send=lambda *m: sent.append(m), on_receive=lambda *m: received.append(m))
        sb = net.add("B", b)
        a.set_cell("t", "r", "c", 1)
        start_all(sa, sb)
        assert net.settle()
        stats = sa.get_synchronizer_stats()
        assert len(sent) == stats["sends"] and len(received) == stats["receives"]
        to, request_id, message, body = sent[0]
        assert to is None and message == tinybase.SyncMessage.GET_CONTENT_HASHES
        assert isinstance(request_id, str) and json.loads(body) == ""
        assert {m[0] for m in received} == {"B"}
        assert all(isinstance(json.loads(m[3]), (list, dict, str, int)) for m in received)
    finally:
        net.close()
        a.close()
        b.close()


def test_framed_mode(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net(framed=True)
    try:
        a.set_cell("t", "r", "c", "x")
        b.set_value("v", [1, 2])
        sa, sb = net.add("A", a), net.add("B", b)
        assert sa.framed
        start_all(sa, sb)
        assert net.settle()
        same(a, b)
        assert b.get_cell("t", "r", "c") == "x"
        broadcast = [f for f in net.frames if f.startswith("\n")]
        addressed = [f for f in net.frames if f.split("\n", 1)[0] in ("A", "B")]
        assert broadcast and addressed and len(broadcast) + len(addressed) == len(net.frames)
        for f in net.frames:
            assert isinstance(json.loads(f.split("\n", 1)[1]), list)
        with pytest.raises(tinybase.InvalidShapeError):
            sa.receive_framed("no newline here")
    finally:
        net.close()
        a.close()
        b.close()


def test_direct_delivery_inside_send(clean):
    """send may call receive of another synchronizer synchronously (no threads at all)."""
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    syncs = {}
    sa = tinybase.CustomSynchronizer(a, lambda to, p: syncs["B"].receive("A", p), 0.5)
    sb = tinybase.CustomSynchronizer(b, lambda to, p: syncs["A"].receive("B", p), 0.5)
    syncs.update(A=sa, B=sb)
    try:
        a.set_cell("t", "r", "c", 1)
        b.set_cell("t", "r", "d", 2)
        start_all(sa, sb)
        assert sa.wait_for_idle(5) and sb.wait_for_idle(5) and sa.wait_for_idle(5)
        a.set_value("v", "after")
        assert sa.wait_for_idle(5) and sb.wait_for_idle(5) and sa.wait_for_idle(5)
        same(a, b)
        assert b.get_value("v") == "after"
    finally:
        sa.close()
        sb.close()
        a.close()
        b.close()


def test_start_sync_initial_content_and_load_save(clean):
    a = tinybase.MergeableStore("a")
    sent = []
    s = tinybase.CustomSynchronizer(a, lambda to, p: sent.append((to, p)), 0.05)
    try:
        t0 = time.monotonic()
        s.start_sync(({"pets": {"fido": {"species": "dog"}}}, {"open": True}))
        assert time.monotonic() - t0 < 5
        assert a.get_cell("pets", "fido", "species") == "dog"
        assert a.get_value("open") is True
        n = len(sent)
        s.save()
        assert len(sent) == n + 1 and json.loads(sent[-1][1])[1] == tinybase.SyncMessage.CONTENT_HASHES
        s.stop_sync()
        a.set_cell("pets", "fido", "legs", 4)
        assert s.wait_for_idle(2)
        assert len(sent) == n + 1  # not auto-saving any more
        s.start_auto_save()
        a.set_cell("pets", "fido", "legs", 3)
        assert s.wait_for_idle(2)
        assert json.loads(sent[-1][1])[1] == tinybase.SyncMessage.CONTENT_DIFF
        s.stop_auto_save()
        s.load('[{"t":{"r":{"c":1}}},{}]')  # JSON text works too; default content only
        s.start_auto_load()
        s.stop_auto_load()
        assert a.get_cell("t", "r", "c") == 1
    finally:
        s.close()
        a.close()


# -- buses and channels -----------------------------------------------------------------------


def _three_on(bus_a, bus_b, bus_c, tag):
    stores = [tinybase.MergeableStore(f"{tag}{i}") for i in range(3)]
    syncs = []
    try:
        stores[0].set_cell("t", "a", "c", 1)
        stores[1].set_value("v", "b")
        stores[2].set_row("t", "c", {"obj": {"k": [1]}})
        for bus, st in zip((bus_a, bus_b, bus_c), stores):
            syncs.append(bus.create_synchronizer(st, 0.5))
        start_all(*syncs)
        assert bus_a.wait_for_idle(10)
        stores[1].del_cell("t", "a", "c")
        assert bus_a.wait_for_idle(10)
        stores[2].set_cell("t", "x", "y", "z")
        assert bus_a.wait_for_idle(10)
        same(*stores)
        assert stores[0].get_content() == ({"t": {"c": {"obj": {"k": [1]}}, "x": {"y": "z"}}}, {"v": "b"})
    finally:
        for s in syncs:
            s.close()
        for st in stores:
            st.close()


def test_three_stores_on_local_bus(clean):
    with tinybase.LocalBus() as bus:
        _three_on(bus, bus, bus, "l")


def test_three_stores_on_broadcast_channel(clean):
    name = f"py-test-{os.getpid()}"
    buses = [tinybase.BroadcastChannel.open(name) for _ in range(3)]
    try:
        _three_on(*buses, "c")
    finally:
        for b in buses:
            b.close()


def test_broadcast_channels_are_separate_and_default_timeout(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    ch1, ch2 = tinybase.BroadcastChannel.open("py-one"), tinybase.BroadcastChannel.open("py-two")
    s1, s2 = ch1.create_synchronizer(a), ch2.create_synchronizer(b)  # default (TinyBase's) timeout
    try:
        a.set_cell("t", "r", "c", 1)
        start_all(s1, s2)
        assert ch1.wait_for_idle(5) and ch2.wait_for_idle(5)
        assert b.get_tables() == {}
    finally:
        s1.close()
        s2.close()
        ch1.close()
        ch2.close()
        a.close()
        b.close()


# -- faults -----------------------------------------------------------------------------------


def test_lossy_python_transport_converges_with_anti_entropy(clean):
    stores = [tinybase.MergeableStore(f"p{i}") for i in range(3)]
    net = Net(seed=42)
    try:
        syncs = [net.add(f"P{i}", st, timeout=0.1, anti_entropy_seconds=0.1) for i, st in enumerate(stores)]
        start_all(*syncs)
        net.drop = 0.4
        rng = random.Random(7)
        for i in range(60):
            st = stores[rng.randrange(3)]
            if rng.random() < 0.2:
                st.del_row("t", f"r{rng.randrange(10)}")
            else:
                st.set_cell("t", f"r{rng.randrange(10)}", f"c{rng.randrange(3)}", rng.randrange(100))
        net.drop = 0.0  # faults stop; anti-entropy repairs what was lost
        converge(*stores)
    finally:
        net.close()
        for st in stores:
            st.close()


def test_concurrent_writes_without_anti_entropy(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net()
    try:
        sa, sb = net.add("A", a), net.add("B", b)
        start_all(sa, sb)
        assert net.settle()

        def writer(st, tag):
            for i in range(300):
                st.set_cell("t", f"{tag}{i}", "c", i)  # each write unique: a lost one stays lost

        threads = [threading.Thread(target=writer, args=(a, "a")), threading.Thread(target=writer, args=(b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert net.settle()
        same(a, b)
    finally:
        net.close()
        a.close()
        b.close()


MALFORMED = [
    "not json",
    "{}",
    "[]",
    "[1, 2]",
    '["tx", 99, ""]',
    '[null, 3, "not changes"]',
    '[null, 3, [{"t": {"r": "bad"}}, {}, 1]]',
    '[null, 3, [{"t": [{"r": [{"c": ["v", "not-an-hlc", 0]}, "", 0]}, "", 0]}, [{}, "", 0], 1]]',
    '["x.abcd", 4, 5]',
    '[1, 2, [1, 2]]',
    "[" * 5000 + "]" * 5000,
]


def test_malformed_messages_reported_never_applied(clean):
    a = tinybase.MergeableStore("a")
    a.set_cell("t", "r", "c", 1)
    before = a.get_mergeable_content_json()
    errors, sent = [], []
    s = tinybase.CustomSynchronizer(a, lambda to, p: sent.append(p), 0.05, on_ignored_error=errors.append)
    try:
        for m in MALFORMED:
            s.receive("X", m)
        assert s.wait_for_idle(5)
        assert errors == ["tinybase:14"] * len(MALFORMED)
        assert a.get_mergeable_content_json() == before
        assert s.get_synchronizer_stats() == {"sends": 0, "receives": 0}
        # still working: once started, a valid request is answered
        s.start_sync()
        s.receive("X", '["abcdefghijk.wxyz", 1, ""]')
        assert s.wait_for_idle(5)
        assert json.loads(sent[-1])[:2] == ["abcdefghijk.wxyz", tinybase.SyncMessage.RESPONSE]
        assert s.get_synchronizer_stats()["receives"] == 1
        assert a.get_mergeable_content_json() == before
        with pytest.raises(TypeError):
            s.receive(1, "[]")
        with pytest.raises(tinybase.InvalidArgumentError):
            s.receive("X", "[\0]")
    finally:
        s.close()
        a.close()


def test_callback_exceptions_are_reported_not_crashing(clean, errors):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    holder = {}
    calls = {"send": 0}

    def send(to, payload):
        calls["send"] += 1
        holder["b"].receive("A", payload)
        raise RuntimeError("send failed after delivering")

    def boom(*args):
        raise ValueError("hook failed")

    sa = tinybase.CustomSynchronizer(a, send, 0.5, on_send=boom, on_receive=boom, on_ignored_error=boom)
    sb = tinybase.CustomSynchronizer(b, lambda to, p: sa.receive("B", p), 0.5)
    holder["b"] = sb
    try:
        a.set_cell("t", "r", "c", 1)
        start_all(sa, sb)
        assert sa.wait_for_idle(5) and sb.wait_for_idle(5)
        a.set_cell("t", "r", "c", 2)
        sa.receive("X", "garbage")
        assert sa.wait_for_idle(5) and sb.wait_for_idle(5)
        same(a, b)
        assert calls["send"] > 0
        kinds = {type(e) for e in errors}
        assert kinds == {RuntimeError, ValueError}
        assert len([e for e in errors if isinstance(e, RuntimeError)]) == calls["send"]
    finally:
        sa.close()
        sb.close()
        a.close()
        b.close()


def test_callback_errors_warn_by_default(clean):
    a = tinybase.MergeableStore("a")
    s = tinybase.CustomSynchronizer(a, lambda to, p: 1 / 0)
    try:
        with pytest.warns(tinybase.CallbackErrorWarning, match="ZeroDivisionError"):
            s.save()
            assert s.wait_for_idle(5)
    finally:
        s.close()
        a.close()


# -- lifetime ---------------------------------------------------------------------------------


def test_destroy_and_close_are_idempotent(clean):
    a = tinybase.MergeableStore("a")
    sent = []
    s = tinybase.CustomSynchronizer(a, lambda to, p: sent.append(p), 0.05)
    s.start_sync()
    stats = s.get_synchronizer_stats()
    s.destroy()
    s.destroy()
    assert s.get_synchronizer_stats() == stats
    assert s.get_status() == tinybase.SyncStatus.IDLE and s.is_idle()
    s.receive("X", '[null, 1, ""]')  # ignored after destroy
    with pytest.raises(tinybase.InvalidStateError):
        s.start_sync()
    with pytest.raises(tinybase.InvalidStateError):
        s.save()
    a.set_cell("t", "r", "c", 1)  # no more sends
    n = len(sent)
    time.sleep(0.05)
    assert len(sent) == n
    s.close()
    s.close()
    assert s.closed
    s.destroy()  # no-op once closed
    s.receive("X", "[]")  # ignored once closed (a transport thread may still deliver)
    with pytest.raises(tinybase.ClosedError):
        s.start_sync()
    with pytest.raises(tinybase.ClosedError):
        s.get_synchronizer_stats()
    with tinybase.CustomSynchronizer(a, lambda to, p: None) as s2:
        s2.save()
    assert s2.closed
    a.close()


def test_destroy_inside_own_callback_is_refused(clean, errors):
    a = tinybase.MergeableStore("a")
    outcome = []
    box = {}

    def send(to, payload):
        try:
            box["s"].destroy()
        except tinybase.InvalidStateError as e:
            outcome.append(e)

    s = tinybase.CustomSynchronizer(a, send, 0.05)
    box["s"] = s
    try:
        s.save()
        assert s.wait_for_idle(5)
        assert len(outcome) == 1 and not errors
    finally:
        s.close()
        box.clear()
        a.close()


def test_close_inside_own_callback_is_deferred(clean):
    start = registry_size()
    a = tinybase.MergeableStore("a")
    box = {}
    closed = threading.Event()

    def send(to, payload):
        box["s"].close()
        closed.set()

    s = tinybase.CustomSynchronizer(a, send, 0.05)
    box["s"] = s
    s.save()
    assert closed.wait(5) and s.closed
    box.clear()
    end = time.monotonic() + 5
    while registry_size() > start and time.monotonic() < end:  # released on a library thread
        time.sleep(0.01)
    a.close()


def test_close_from_a_store_listener_on_the_worker_thread(clean):
    """A store listener running on the worker (while it applies a peer's ContentDiff) closes
    the synchronizer: nothing is sent after that, and the callbacks are released once the
    worker has exited."""
    a = tinybase.MergeableStore("a")
    start = registry_size()
    sends = []
    box = {}
    closed = threading.Event()
    main = threading.get_ident()
    s = tinybase.CustomSynchronizer(a, lambda to, p: sends.append(p), 0.05)
    box["s"] = s
    s.start_sync()  # alone: times out, then auto-saves (answers requests)

    def listener(store):
        if threading.get_ident() == main or closed.is_set():
            return
        box["s"].receive("b", '["q",1,""]')  # queued before the close: never answered
        box["sent"] = len(sends)
        box["s"].close()
        closed.set()

    listening = a.add_tables_listener(listener)
    s.receive("b", '["x",3,[[{"t":[{"r":[{"c":[2,"NjEtLV-----6YM_I"]}]}]}],[{}],1]]')
    assert closed.wait(5) and s.closed
    end = time.monotonic() + 5
    while registry_size() > start + 1 and time.monotonic() < end:  # + the listener
        time.sleep(0.01)
    assert registry_size() == start + 1
    time.sleep(0.05)
    assert len(sends) == box["sent"]
    assert a.get_cell("t", "r", "c") == 2
    listening.remove()
    box.clear()
    a.close()


def test_a_flood_is_refused_beyond_the_inbox_bounds(clean):
    """While the worker is held up in send, payloads beyond inbox_max_bytes are refused at
    once (InvalidStateError), counted, and reported as tinybase:15:inbox; the accepted ones
    are applied once the worker runs again."""
    a = tinybase.MergeableStore("a")
    gate, held, errors = threading.Event(), threading.Event(), []

    def send(to, payload):
        if not gate.is_set():
            held.set()
            gate.wait(10)

    s = tinybase.CustomSynchronizer(a, send, 0.05, inbox_max_bytes=1 << 20, on_ignored_error=errors.append)
    try:
        gate.set()
        s.start_sync()
        gate.clear()
        saving = threading.Thread(target=s.save)
        saving.start()
        assert held.wait(5)
        accepted = refused = most = 0
        big = "x" * 100_000
        for i in range(300):
            payload = f'["f{i}",3,[[{{"big":[{{"r{i}":[{{"c":["{big}","NjEtLV-----6YM_I"]}}]}}]}}],[{{}}],1]]'
            try:
                s.receive("b", payload)
                accepted += 1
            except tinybase.InvalidStateError:
                refused += 1
            most = max(most, s.get_inbox_stats()["queued_bytes"])
        assert most <= 1 << 20 and accepted >= 5 and refused > 250
        stats = s.get_inbox_stats()
        assert stats["queued_payloads"] == accepted and stats["refused_payloads"] == refused
        gate.set()
        saving.join(10)
        assert s.wait_for_idle(10)
        assert a.get_row_count("big") == accepted
        assert s.get_inbox_stats()["queued_bytes"] == 0
        assert "tinybase:15:inbox" in errors
    finally:
        gate.set()
        s.close()
        a.close()
    with pytest.raises(ValueError):
        tinybase.CustomSynchronizer(tinybase.MergeableStore("c"), send, inbox_max_payloads=-1)


def test_close_while_start_sync_blocks_on_another_thread(clean):
    a = tinybase.MergeableStore("a")
    s = tinybase.CustomSynchronizer(a, lambda to, p: None, 30.0)  # nobody answers: would block
    outcome = []

    def start():
        try:
            s.start_sync()
            outcome.append("returned")
        except tinybase.TinyBaseError as e:
            outcome.append(e)

    t = threading.Thread(target=start)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    s.close()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 10 and len(outcome) == 1
    a.close()


def test_registry_and_handles_return_to_start():
    gc.collect()
    before = (registry_size(), tinybase.debug_live_handles())
    stores = [tinybase.MergeableStore(f"s{i}") for i in range(4)]
    bus = tinybase.LocalBus()
    syncs = [tinybase.CustomSynchronizer(stores[0], lambda to, p: None, on_ignored_error=print)]
    syncs.append(tinybase.CustomSynchronizer(stores[1], lambda f: None, framed=True))
    syncs.append(bus.create_synchronizer(stores[2], on_send=lambda *a: None))
    syncs.append(bus.create_synchronizer(stores[3]))
    assert registry_size() == before[0] + 4  # transports + hook sets that were given
    assert tinybase.debug_live_handles() > before[1]
    syncs[2].start_sync()
    with pytest.raises(TypeError):
        tinybase.CustomSynchronizer(stores[0], "not callable")
    with pytest.raises(TypeError):
        tinybase.CustomSynchronizer(tinybase.Store(), lambda to, p: None)
    with pytest.raises(tinybase.InvalidArgumentError):
        tinybase.CustomSynchronizer(stores[0], lambda to, p: None, -1.0, on_send=print)
    assert registry_size() == before[0] + 4  # failed creations registered nothing
    del syncs[3]  # garbage collection closes too
    gc.collect()
    for s in syncs:
        s.close()
    bus.close()
    for st in stores:
        st.close()
    del syncs, stores, bus
    gc.collect()
    assert (registry_size(), tinybase.debug_live_handles()) == before


# -- interop with TinyBase (tests/interop/sync) -------------------------------------------------


def _interop_or_skip():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the interop hub (tests/interop/sync) needs Node >= 20")
    if not os.path.isdir(os.path.join(REPO, "tests", "interop", "node_modules")):
        pytest.skip("tests/interop/node_modules is missing: run `cd tests/interop && npm ci`")
    return node


def _python_peer():
    return f"{sys.executable} {os.path.join(HERE, 'sync_peer.py')}"


def _run_reference(node, *args):
    env = dict(os.environ)
    env.setdefault("TINYBASE_LIBRARY", str(tinybase.library_path))
    r = subprocess.run([node, "reference.mjs", "--check", *args], cwd=SYNC_DIR, capture_output=True, text=True, timeout=600, env=env)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert r.returncode == 0, f"reference.mjs failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert lines and all(l.get("matchesExpected") is True and l.get("converged") for l in lines), r.stdout
    return lines


def test_interop_python_peer_matches_tinybase_in_every_scenario():
    node = _interop_or_skip()
    lines = _run_reference(node, "--peer", f"B={_python_peer()}")
    assert len(lines) == len([f for f in os.listdir(os.path.join(SYNC_DIR, "scenarios")) if f.endswith(".json")])


def test_interop_three_peers_tinybase_rust_python():
    node = _interop_or_skip()
    rust_peer = os.path.join(REPO, "target", "release", "examples", "sync_peer")
    assert os.path.isfile(rust_peer), "build the Rust peer: cargo build --release --example sync_peer (run_tests.sh does)"
    lines = _run_reference(node, "--peer", f"B={rust_peer}", "--peer", f"C={_python_peer()}", "scenarios/h-three-peers.json")
    assert [l["name"] for l in lines] == ["h-three-peers"]


def test_is_settled_after_a_local_write(clean):
    a, b = tinybase.MergeableStore("a"), tinybase.MergeableStore("b")
    net = Net()
    try:
        sa, sb = net.add("A", a), net.add("B", b)
        start_all(sa, sb)
        assert net.settle()
        before = sa.get_synchronizer_stats()["sends"]
        a.set_cell("t", "r", "c", 1)
        deadline = time.monotonic() + 5
        while not sa.is_settled() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert sa.is_settled()
        assert sa.get_synchronizer_stats()["sends"] == before + 1  # the ContentDiff went out
    finally:
        net.close()
        a.close()
        b.close()
