"""Concurrent use from Python threads: no lost writes, atomic transactions, no crash."""

import threading

from tinybase import MergeableStore, Store

THREADS = 8


def run(target, n=THREADS):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_writers_no_lost_writes():
    s = MergeableStore("w", get_now=lambda: 1_700_000_000_000.0)
    per = 500

    def writer(i):
        for j in range(per):
            s.set_cell(f"t{i}", f"r{j}", "c", j)
            s.set_value(f"v{i}", j)

    run(writer)
    for i in range(THREADS):
        assert s.get_row_count(f"t{i}") == per
        assert all(s.get_cell(f"t{i}", f"r{j}", "c") == j for j in range(per))
        assert s.get_value(f"v{i}") == per - 1
    assert s.compute_content_hashes() == s.get_mergeable_content_hashes()
    s.close()


def test_read_modify_write_in_transactions_is_atomic():
    s = Store()
    s.set_value("counter", 0)
    per = 300

    def incr(i):
        for _ in range(per):
            with s.transaction():
                s.set_value("counter", s.get_value("counter") + 1)

    run(incr)
    assert s.get_value("counter") == THREADS * per


def test_transaction_is_never_seen_half_done():
    s = Store()
    s.set_row("t", "r", {"a": 0, "b": 0})
    stop = threading.Event()
    torn = []

    def reader():
        while not stop.is_set():
            row = s.get_row("t", "r")
            if row["a"] != row["b"]:
                torn.append(row)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for r in readers:
        r.start()

    def writer(i):
        for j in range(200):
            with s.transaction():
                s.set_cell("t", "r", "a", i * 1000 + j)
                s.set_cell("t", "r", "b", i * 1000 + j)

    run(writer, 4)
    stop.set()
    for r in readers:
        r.join()
    assert not torn


def test_concurrent_replicas_merge_and_listen():
    stores = [MergeableStore(f"s{i}") for i in range(4)]
    seen = [0] * 4
    lock = threading.Lock()
    for i, st in enumerate(stores):
        def cb(store, *a, i=i):
            with lock:
                seen[i] += 1
        st.add_cell_listener(None, None, None, cb)

    def work(i):
        st = stores[i]
        for j in range(100):
            st.set_cell("t", f"r{i}-{j}", "c", j)
            if j % 25 == 0:
                st.merge(stores[(i + 1) % 4])

    run(work, 4)
    for _ in range(2):
        for i in range(4):
            stores[i].merge(stores[(i + 1) % 4])
    hashes = {st.get_mergeable_content_hashes() for st in stores}
    assert len(hashes) == 1
    assert all(st.get_row_count("t") == 400 for st in stores)
    assert all(n >= 100 for n in seen)
    for st in stores:
        st.close()


def test_listener_on_one_thread_while_others_write():
    s = Store()
    total = []
    lock = threading.Lock()

    def cb(store, t, r, c, new, old):
        with lock:
            total.append(new)

    listener = s.add_cell_listener(None, None, None, cb)
    run(lambda i: [s.set_cell("t", f"r{i}", "c", j) for j in range(200)])
    assert len(total) == THREADS * 200
    listener.remove()
    s.close()
