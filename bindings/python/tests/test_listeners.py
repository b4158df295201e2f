"""Listeners: every kind, wildcards, removal, re-entrance, exceptions, callback lifetime."""

import gc
import threading
import warnings
import weakref

import pytest

import tinybase
from tinybase import ABSENT, CallbackErrorWarning, ListenerKind, MergeableStore, Store
from tinybase import _store as internals


@pytest.fixture(params=["plain", "mergeable"])
def store(request):
    s = Store() if request.param == "plain" else MergeableStore("l", get_now=lambda: 1_700_000_000_000.0)
    yield s
    s.close()


def recorder():
    calls = []

    def cb(store, *args):
        calls.append(args)

    return calls, cb


def test_every_kind_with_ids(store):
    rec = {}

    def add(name, method, *ids):
        calls, cb = recorder()
        rec[name] = calls
        getattr(store, method)(*ids, cb)

    add("has_tables", "add_has_tables_listener")
    add("tables", "add_tables_listener")
    add("table_ids", "add_table_ids_listener")
    add("has_table", "add_has_table_listener", "t")
    add("table", "add_table_listener", "t")
    add("table_cell_ids", "add_table_cell_ids_listener", "t")
    add("has_table_cell", "add_has_table_cell_listener", "t", "c")
    add("row_count", "add_row_count_listener", "t")
    add("row_ids", "add_row_ids_listener", "t")
    add("has_row", "add_has_row_listener", "t", "r")
    add("row", "add_row_listener", "t", "r")
    add("cell_ids", "add_cell_ids_listener", "t", "r")
    add("has_cell", "add_has_cell_listener", "t", "r", "c")
    add("cell", "add_cell_listener", "t", "r", "c")
    add("has_values", "add_has_values_listener")
    add("values", "add_values_listener")
    add("value_ids", "add_value_ids_listener")
    add("has_value", "add_has_value_listener", "v")
    add("value", "add_value_listener", "v")
    add("start", "add_start_transaction_listener")
    add("will", "add_will_finish_transaction_listener")
    add("did", "add_did_finish_transaction_listener")
    assert store.get_listener_count() == 22

    store.set_cell("t", "r", "c", "x")
    store.set_value("v", [1])
    assert rec["has_tables"] == [(True,)]
    assert rec["tables"] == [()]
    assert rec["table_ids"] == [()]
    assert rec["has_table"] == [("t", True)]
    assert rec["table"] == [("t",)]
    assert rec["table_cell_ids"] == [("t",)]
    assert rec["has_table_cell"] == [("t", "c", True)]
    assert rec["row_count"] == [("t", 1)]
    assert rec["row_ids"] == [("t",)]
    assert rec["has_row"] == [("t", "r", True)]
    assert rec["row"] == [("t", "r")]
    assert rec["cell_ids"] == [("t", "r")]
    assert rec["has_cell"] == [("t", "r", "c", True)]
    assert rec["cell"] == [("t", "r", "c", "x", ABSENT)]
    assert rec["has_values"] == [(True,)]
    assert rec["values"] == [()]
    assert rec["value_ids"] == [()]
    assert rec["has_value"] == [("v", True)]
    assert rec["value"] == [("v", [1], ABSENT)]
    assert rec["start"] == rec["will"] == rec["did"] == [(), ()]

    for calls in rec.values():
        calls.clear()
    store.set_cell("t", "r", "c", None)
    assert rec["cell"] == [("t", "r", "c", None, "x")]
    store.del_cell("t", "r", "c")
    assert rec["cell"][-1] == ("t", "r", "c", ABSENT, None)
    assert rec["has_cell"][-1] == ("t", "r", "c", False)
    assert rec["row_count"][-1] == ("t", 0)
    store.del_value("v")
    assert rec["value"][-1] == ("v", ABSENT, [1])
    assert rec["has_values"][-1] == (False,)


def test_wildcards(store):
    calls, cb = recorder()
    store.add_cell_listener(None, None, "c", cb)
    any_row, cb2 = recorder()
    store.add_row_listener("t", None, cb2)
    any_value, cb3 = recorder()
    store.add_value_listener(None, cb3)
    store.set_cell("t", "r1", "c", 1).set_cell("u", "r2", "c", 2).set_cell("t", "r1", "d", 3)
    store.set_value("a", 1).set_value("b", 2)
    assert calls == [("t", "r1", "c", 1, ABSENT), ("u", "r2", "c", 2, ABSENT)]
    assert any_row == [("t", "r1"), ("t", "r1")]
    assert any_value == [("a", 1, ABSENT), ("b", 2, ABSENT)]


def test_generic_add_listener(store):
    calls, cb = recorder()
    l = store.add_listener(ListenerKind.HAS_ROW, ("t", None), cb)
    assert l.kind is ListenerKind.HAS_ROW and isinstance(l.id, int)
    store.set_cell("t", "x", "c", 1)
    assert calls == [("t", "x", True)]


def test_store_argument_is_the_python_store(store):
    got = []
    store.add_tables_listener(lambda s: got.append(s))
    store.set_cell("t", "r", "c", 1)
    assert got == [store]


def test_removal_and_release(store, live_handles):
    before = len(internals._callbacks)
    calls, cb = recorder()
    ref = weakref.ref(cb)
    listener = store.add_cell_listener(None, None, None, cb)
    assert len(internals._callbacks) == before + 1
    store.set_cell("t", "r", "c", 1)
    listener.remove()
    assert not listener.active
    listener.remove()  # idempotent
    store.set_cell("t", "r", "c", 2)
    assert len(calls) == 1
    assert len(internals._callbacks) == before  # released by the library's release callback
    del cb
    gc.collect()
    assert ref() is None  # nothing keeps the callable alive any more
    with store.add_value_listener("v", lambda *a: None) as l2:
        assert l2.active
    assert store.get_listener_count() == 0
    store.del_listener(store.add_tables_listener(lambda s: None))
    assert store.get_listener_count() == 0


def test_close_releases_callbacks():
    before = len(internals._callbacks)
    s = Store()
    for _ in range(5):
        s.add_tables_listener(lambda st: None)
    m = MergeableStore(get_now=lambda: 1.7e12)
    assert len(internals._callbacks) == before + 6
    s.close()
    m.close()
    assert len(internals._callbacks) == before


def test_remove_inside_own_callback(store):
    calls = []
    holder = {}

    def once(s, *args):
        calls.append(args)
        holder["l"].remove()

    holder["l"] = store.add_cell_listener(None, None, None, once)
    store.set_cell("t", "r", "a", 1)
    store.set_cell("t", "r", "b", 2)
    assert calls == [("t", "r", "a", 1, ABSENT)]
    assert store.get_listener_count() == 0


def test_listener_writes_store(store):
    def mirror(s, t, r, c, new, old):
        if t == "src" and new is not ABSENT:
            s.set_cell("dst", r, c, new)

    store.add_cell_listener("src", None, None, mirror)
    store.set_cell("src", "r", "c", 5)
    assert store.get_cell("dst", "r", "c") == 5


def test_exception_in_listener_is_reported_not_raised(store):
    def boom(s, *args):
        raise RuntimeError("listener failed")

    seen, ok = recorder()
    store.add_tables_listener(boom)
    store.add_tables_listener(ok)
    with pytest.warns(CallbackErrorWarning, match="listener failed"):
        store.set_cell("t", "r", "c", 1)
    assert store.get_cell("t", "r", "c") == 1 and seen == [()]


def test_custom_error_handler(store, errors):
    store.add_value_listener(None, lambda *a: 1 / 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.set_value("v", 1)
        store.set_value("v", 2)
    assert len(errors) == 2 and all(isinstance(e, ZeroDivisionError) for e in errors)


def test_clock_exception_is_reported(errors):
    def bad():
        raise ValueError("no clock")

    m = MergeableStore("c", get_now=bad)
    m.set_cell("t", "r", "c", 1)
    assert m.get_cell("t", "r", "c") == 1
    assert errors and isinstance(errors[0], ValueError)
    m.close()


def test_listeners_called_on_writer_threads():
    s = Store()
    seen = set()
    lock = threading.Lock()

    def cb(st, t, r, c, new, old):
        with lock:
            seen.add((threading.get_ident(), r))

    s.add_cell_listener(None, None, None, cb)
    writers = {}

    def write(i):
        writers[f"r{i}"] = threading.get_ident()
        for j in range(50):
            s.set_cell("t", f"r{i}", "c", j)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r for _, r in seen} == {f"r{i}" for i in range(4)}
    assert all(writers[r] == tid for tid, r in seen)  # called on the thread that wrote
    s.close()
