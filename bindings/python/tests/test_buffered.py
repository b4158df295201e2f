"""Buffered delivery: events queued by the library, drained on a thread of the host's choosing."""

import threading
import time

import pytest

import tinybase
from tinybase import ABSENT, EventQueue, ListenerKind, MergeableStore, Store


def test_poll_events(live_handles):
    with Store() as s, EventQueue() as q:
        cell = s.add_buffered_listener(q, ListenerKind.CELL, "t", None, None)
        rc = s.add_buffered_listener(q, ListenerKind.ROW_COUNT, None)
        assert q.poll() is None and len(q) == 0
        s.set_cell("t", "r", "c", "x")
        s.set_cell("u", "r", "c", 1)
        assert len(q) == 3
        events = q.drain()
        kinds = [e.kind for e in events]
        assert kinds.count(ListenerKind.CELL) == 1 and kinds.count(ListenerKind.ROW_COUNT) == 2
        e = next(e for e in events if e.kind is ListenerKind.CELL)
        assert e.listener_id == cell.id
        assert (e.table_id, e.row_id, e.cell_id) == ("t", "r", "c")
        assert e.new_value == "x" and e.old_value is ABSENT
        assert e.args == ("t", "r", "c", "x", ABSENT) and e.ids == ("t", "r", "c")
        counts = [e.args for e in events if e.kind is ListenerKind.ROW_COUNT]
        assert counts == [("t", 1), ("u", 1)]
        assert "CELL" in repr(e)
        cell.remove()
        rc.remove()


def test_wait_with_timeout_and_other_thread():
    s = MergeableStore("q", get_now=lambda: 1_700_000_000_000.0)
    q = EventQueue()
    s.add_buffered_listener(q, ListenerKind.VALUE, None)
    t0 = time.monotonic()
    assert q.wait(0.05) is None
    assert time.monotonic() - t0 >= 0.04
    got = []

    def consumer():
        while len(got) < 100:
            e = q.wait(5)
            if e is None:
                break
            got.append((threading.get_ident(), e.value_id, e.new_value))

    th = threading.Thread(target=consumer)
    th.start()
    for i in range(100):
        s.set_value(f"v{i}", i)
    th.join(10)
    assert [(v, n) for _, v, n in got] == [(f"v{i}", i) for i in range(100)]
    assert all(tid == th.ident for tid, _, _ in got)
    q.close()
    s.close()


def test_notify_callback_and_removal_discards():
    calls = []
    s = Store()
    q = EventQueue(notify=lambda: calls.append(1))
    l = s.add_buffered_listener(q, ListenerKind.TABLES)
    s.set_cell("t", "r", "c", 1)
    s.set_cell("t", "r", "c", 2)
    assert calls == [1]  # only when the queue goes from empty to non-empty
    assert len(q) == 2
    l.remove()
    assert len(q) == 0  # its queued events are discarded
    s.set_cell("t", "r", "c", 3)
    assert q.poll() is None
    q.close()
    assert q.closed
    s.close()


def test_queue_close_stops_delivery(live_handles):
    s = Store()
    q = EventQueue()
    l = s.add_buffered_listener(q, ListenerKind.HAS_TABLES)
    q.close()
    s.set_cell("t", "r", "c", 1)  # no crash: the listener stops queueing
    l.remove()
    s.close()


def test_buffered_transaction_kinds():
    with Store() as s, EventQueue() as q:
        s.add_buffered_listener(q, ListenerKind.DID_FINISH_TRANSACTION)
        with s.transaction():
            s.set_value("a", 1)
            s.set_value("b", 2)
        events = q.drain()
        assert [e.kind for e in events] == [ListenerKind.DID_FINISH_TRANSACTION]
        assert events[0].args == ()
