"""close() racing calls on other threads, for every handle (Store, MergeableStore, EventQueue,
LocalBus, Synchronizer): calls in flight finish safely, later calls raise ClosedError (a
TinyBaseError), and closing from inside a callback of the same handle does not deadlock.

The races run in a subprocess, so that a crash (segfault, heap corruption) or a hang fails the
test instead of killing pytest."""

import os
import subprocess
import sys
import textwrap

import pytest

import tinybase
from tinybase import ClosedError, EventQueue, ListenerKind, LocalBus, MergeableStore, Store, TinyBaseError

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tinybase.__file__)))

RACE = textwrap.dedent(
    """
    import sys, threading, time
    import tinybase
    from tinybase import ClosedError, EventQueue, LocalBus, MergeableStore, Store, TinyBaseError

    assert issubclass(ClosedError, TinyBaseError)
    THREADS, ROUNDS = 4, int(sys.argv[2])
    failures = []

    def make(kind):
        if kind == "store":
            s = Store()
            def work(i, n):
                s.set_cell("t", f"r{i}", "c", f"x{n}")
                s.get_cell("t", f"r{i}", "c")
                s.get_tables_json()
                s.set_value("v", n)
                with s.transaction():
                    s.del_value("v")
            return s, work
        if kind == "mergeable":
            m = MergeableStore("m")
            def work(i, n):
                m.set_cell("t", f"r{i}", "c", n)
                m.get_mergeable_content_json()
                m.get_mergeable_content_hashes()
            return m, work
        if kind == "queue":
            q = EventQueue()
            s = Store()
            s.add_buffered_listener(q, tinybase.ListenerKind.CELL, None, None, None)
            def work(i, n):
                s.set_cell("t", "r", "c", n)
                q.poll()
                len(q)
                q.wait(0.001)
            return q, work
        if kind == "bus":
            b = LocalBus()
            def work(i, n):
                b.wait_for_idle(0.001)
            return b, work
        raise ValueError(kind)

    def worker(obj, work, i, stop):
        n = 0
        try:
            while not stop.is_set():
                work(i, n)
                n += 1
        except ClosedError:
            pass
        except BaseException as e:
            failures.append(repr(e))

    for _ in range(ROUNDS):
        obj, work = make(sys.argv[1])
        stop = threading.Event()
        ts = [threading.Thread(target=worker, args=(obj, work, i, stop)) for i in range(THREADS)]
        for t in ts:
            t.start()
        time.sleep(0.02)
        obj.close()
        try:
            work(0, 0)
            failures.append("a call after close did not raise")
        except ClosedError:
            pass
        stop.set()
        for t in ts:
            t.join(30)
            if t.is_alive():
                failures.append("a thread hangs")
    if failures:
        print(failures[:5])
        sys.exit(1)
    print("ok")
    """
)


@pytest.mark.parametrize("kind", ["store", "mergeable", "queue", "bus"])
def test_close_while_threads_call(kind):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        r = subprocess.run([sys.executable, "-c", RACE, kind, "10"], capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind}: close while threads call hangs")
    assert r.returncode == 0, f"{kind}: exit {r.returncode} (negative: killed by a signal)\n{r.stdout}\n{r.stderr[-2000:]}"
    assert r.stdout.strip().endswith("ok")


def test_calls_after_close_raise_closed_error(live_handles):
    s = Store()
    m = MergeableStore()
    q = EventQueue()
    b = LocalBus()
    for h in (s, m, q, b):
        h.close()
        h.close()  # idempotent
        assert h.closed
    for call in (lambda: s.get_tables(), lambda: s.set_cell("t", "r", "c", 1), lambda: m.get_mergeable_content(),
                 lambda: m.set_cell("t", "r", "c", "x"), lambda: q.poll(), lambda: len(q), lambda: b.wait_for_idle(0.01)):
        with pytest.raises(ClosedError) as e:
            call()
        assert isinstance(e.value, TinyBaseError)


def test_close_store_inside_its_own_listener(live_handles):
    s = Store()
    seen = []

    def listener(store, table_id, row_id, cell_id, new, old):
        seen.append(new)
        s.close()  # the set_cell below is still in flight on this thread
        with pytest.raises(ClosedError):
            s.get_tables()

    s.add_cell_listener(None, None, None, listener)
    s.set_cell("t", "r", "c", 1)  # returns: no deadlock, the free happens as it returns
    assert seen == [1]
    assert s.closed
    with pytest.raises(ClosedError):
        s.set_cell("t", "r", "c", 2)


def test_close_mergeable_store_inside_listener_on_worker_thread(live_handles):
    bus = LocalBus()
    a, b = MergeableStore("a"), MergeableStore("b")
    sa, sb = bus.create_synchronizer(a), bus.create_synchronizer(b)
    sa.start_sync()
    sb.start_sync()
    import threading

    done = threading.Event()

    def listener(store, value_id, new, old):
        b.close()  # the host's last handle, from the synchronizer's worker thread
        done.set()

    b.add_value_listener("v", listener)
    a.set_value("v", 1)
    assert done.wait(10)
    assert bus.wait_for_idle(10)
    with pytest.raises(ClosedError):
        b.get_values()
    for h in (sa, sb, a, bus):
        h.close()


def test_close_queue_inside_notify(live_handles):
    holder = {}

    def notify():
        holder["q"].close()  # from the queue's own callback: no deadlock

    q = EventQueue(notify)
    holder["q"] = q
    s = Store()
    s.add_buffered_listener(q, ListenerKind.VALUE, "v")
    s.set_value("v", 1)
    assert q.closed
    with pytest.raises(ClosedError):
        q.poll()
    s.close()


def test_last_close_waits_for_listener_on_worker_thread(live_handles):
    """The last close of a store returns only after its listener running on a synchronizer's
    worker thread has returned (the native free waits; the GIL is released meanwhile)."""
    import threading
    import time

    bus = LocalBus()
    a, b = MergeableStore("a"), MergeableStore("b")
    sa, sb = bus.create_synchronizer(a), bus.create_synchronizer(b)
    sa.start_sync()
    sb.start_sync()
    entered = threading.Event()
    finished = []

    def listener(store, value_id, new, old):
        entered.set()
        time.sleep(0.3)
        finished.append(new)

    b.add_value_listener("v", listener)
    a.set_value("v", 1)
    assert entered.wait(10)
    b.close()
    assert finished == [1]
    for h in (sa, sb, a, bus):
        h.close()
