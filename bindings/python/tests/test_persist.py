"""Persisters from Python: the file, SQLite (both modes) and PostgreSQL persisters with
MergeableStore and Store, what load/save promise (merge on load, nothing stored leaves the store,
durable saves, corrupt data refused and kept), auto-save and auto-load, persisting while
synchronizers write the same store from several threads, callbacks and lifetimes."""

import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

import tinybase
from tinybase import (
    ClosedError,
    CorruptDataError,
    DurableInfo,
    FilePersister,
    InvalidStateError,
    MergeableStore,
    PersisterStats,
    PersisterStatus,
    PostgresPersister,
    SqlitePersister,
    StorageError,
    Store,
    TinyBaseError,
)
from tinybase import _store

from conftest import wait_for

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tinybase.__file__)))
PG_DSN = os.environ.get("TB_TEST_POSTGRES_DSN")




def fill(store, n=3, table="pets"):
    with store.transaction():
        for i in range(n):
            store.set_cell(table, f"r{i}", "name", f"pet {i}")
            store.set_cell(table, f"r{i}", "legs", i)
        store.set_value("open", True)
    return store


def same(a, b):
    """Whether two stores hold the same content (and, for mergeable ones, the same hashes)."""
    if a.get_tables() != b.get_tables() or a.get_values() != b.get_values():
        return False
    if isinstance(a, MergeableStore) and isinstance(b, MergeableStore):
        return a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes()
    return True


# Every kind of persister a MergeableStore can use, as (id, factory(store, tmp_path, **kw)).
# One room per test (tmp_path is unique per test), fresh in every run (the server may be reused).
RUN = uuid.uuid4().hex[:8]


def _pg(store, tmp_path, **kw):
    return PostgresPersister(store, PG_DSN, f"py-{RUN}-{tmp_path.name}", **kw)


KINDS = [
    ("file", lambda s, d, **kw: FilePersister(s, d / "store.json", **kw)),
    ("sqlite-json", lambda s, d, **kw: SqlitePersister(s, d / "store.db", **kw)),
    ("sqlite-incremental", lambda s, d, **kw: SqlitePersister(s, d / "store.db", "incremental", **kw)),
]
PLAIN_KINDS = KINDS[:2]  # incremental layouts need a MergeableStore
if PG_DSN:  # every MergeableStore test below runs on PostgreSQL too
    KINDS.append(("postgres", _pg))


def needs_pg():
    if not PG_DSN:
        msg = (
            "TB_TEST_POSTGRES_DSN is not set: no PostgreSQL server was given, so the PostgreSQL "
            "persister is NOT tested (bindings/python/run_tests.sh starts one with scripts/pg.sh)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " - CI must test it")
        pytest.skip(msg)


# ---- errors ---------------------------------------------------------------------------------


def test_storage_and_corrupt_errors_are_tinybase_errors_with_their_status():
    assert issubclass(StorageError, TinyBaseError) and issubclass(StorageError, OSError)
    assert issubclass(CorruptDataError, TinyBaseError) and issubclass(CorruptDataError, ValueError)
    assert (StorageError.status, CorruptDataError.status) == (10, 11)
    e = StorageError("file x: disk full", 10)
    assert str(e) == "file x: disk full" and e.message == "file x: disk full"


# ---- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_mergeable_round_trip(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    with MergeableStore("a") as a, make(a, tmp_path) as p:
        fill(a)
        a.set_cell("pets", "r0", "tags", ["good", "loud"])
        assert p.save() is p
        assert p.get_stats().saves == 1
    with MergeableStore("b") as b, make(b, tmp_path) as p2:
        assert p2.load() is True
        assert b.get_cell("pets", "r0", "tags") == ["good", "loud"]
        assert b.get_value("open") is True
        with MergeableStore("a2") as expected:
            fill(expected)
            assert b.get_row_ids("pets") == expected.get_row_ids("pets")
        assert p2.get_stats() == PersisterStats(1, 0)


@pytest.mark.parametrize("kind", [k for k, _ in PLAIN_KINDS])
def test_plain_store_round_trip(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    with Store() as a, make(a, tmp_path) as p:
        fill(a)
        p.save()
        content = a.get_content()
    with Store() as b, make(b, tmp_path) as p2:
        assert p2.load() is True
        assert b.get_content() == content


def test_file_holds_tinybase_file_format(tmp_path, clean):
    """A MergeableStore file is its wire-form mergeable content, a Store file `[tables, values]`:
    what TinyBase's createFilePersister writes and reads."""
    with MergeableStore("a") as m, FilePersister(m, tmp_path / "m.json") as p:
        fill(m)
        m.set_cell("pets", "r0", "tags", ["good"])
        p.save()
        on_disk = json.loads((tmp_path / "m.json").read_text("utf-8"))
        assert on_disk == json.loads(m.get_mergeable_content_json())
        assert on_disk[0][2] == m.get_mergeable_content_hashes()[0]
    with Store() as s, FilePersister(s, tmp_path / "s.json") as p:
        fill(s)
        p.save()
        assert json.loads((tmp_path / "s.json").read_text("utf-8")) == list(s.get_content())


def test_sqlite_json_mode_uses_tinybase_layout_and_given_names(tmp_path, clean):
    db = tmp_path / "names.db"
    with MergeableStore("a") as m, SqlitePersister(m, db, table_name="my_store", id_column_name="k", store_column_name="doc") as p:
        fill(m)
        p.save()
        hashes = m.get_mergeable_content_hashes()
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT k, doc FROM my_store").fetchall()
        finally:
            con.close()
        assert len(rows) == 1 and rows[0][0] == "_"
        assert json.loads(rows[0][1]) == json.loads(m.get_mergeable_content_json())
    with MergeableStore("b") as b, SqlitePersister(b, db, table_name="my_store", id_column_name="k", store_column_name="doc") as p:
        assert p.load()
        assert b.get_mergeable_content_hashes() == hashes and b.get_row_count("pets") == 3


def test_incremental_needs_a_mergeable_store(tmp_path, clean):
    with Store() as s:
        with pytest.raises(InvalidStateError):
            SqlitePersister(s, tmp_path / "x.db", "incremental")


def test_bad_arguments_raise_before_touching_anything(tmp_path, clean):
    with MergeableStore() as s:
        with pytest.raises(ValueError):
            SqlitePersister(s, tmp_path / "x.db", "wal")
        with pytest.raises(TypeError):
            FilePersister(s, 42)
        with pytest.raises(TypeError):
            FilePersister("not a store", tmp_path / "x.json")
        with pytest.raises(TypeError):
            FilePersister(s, tmp_path / "x.json", on_durable=5)
        with pytest.raises(ValueError):
            FilePersister(s, tmp_path / "x.json", lock_timeout=-1)
        with pytest.raises(tinybase.InvalidArgumentError):
            FilePersister(s, str(tmp_path / "x\0.json"))
    assert os.listdir(tmp_path) == []


# ---- load semantics -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_load_of_nothing_leaves_the_store(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    with MergeableStore("a") as a, make(a, tmp_path) as p:
        fill(a)
        before = (a.get_mergeable_content_json(), a.get_mergeable_content_hashes())
        assert p.load() is False
        assert (a.get_mergeable_content_json(), a.get_mergeable_content_hashes()) == before
        assert p.get_stats().loads == 1


def test_load_into_a_missing_folder_is_nothing_stored(tmp_path, clean):
    with Store() as s, FilePersister(s, tmp_path / "no" / "such" / "dir.json") as p:
        s.set_value("keep", 1)
        assert p.load() is False
        assert s.get_values() == {"keep": 1}


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_load_merges_instead_of_replacing(tmp_path, clean, kind):
    """TinyBase's load replaces the store; ours merges what it loads (newer stamps win)."""
    make = dict(KINDS)[kind]
    with MergeableStore("a") as a, make(a, tmp_path) as p:
        a.set_cell("pets", "fido", "species", "dog").set_value("shared", "from disk")
        p.save()
    with MergeableStore("b") as b, make(b, tmp_path) as p:
        b.set_cell("pets", "rex", "species", "cat")
        time.sleep(0.005)
        b.set_value("shared", "newer in memory")
        assert p.load()
        assert b.get_cell("pets", "fido", "species") == "dog"  # from the storage
        assert b.get_cell("pets", "rex", "species") == "cat"  # kept
        assert b.get_value("shared") == "newer in memory"  # the newer stamp wins


@pytest.mark.parametrize("kind", [k for k, _ in PLAIN_KINDS])
def test_plain_store_load_sets_stored_cells_and_keeps_its_own(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    with Store() as a, make(a, tmp_path) as p:
        a.set_cell("pets", "fido", "species", "dog").set_value("v", "stored")
        p.save()
    with Store() as b, make(b, tmp_path) as p:
        b.set_cell("pets", "rex", "species", "cat").set_value("v", "mine").set_value("only", 1)
        assert p.load()
        assert b.get_table("pets") == {"fido": {"species": "dog"}, "rex": {"species": "cat"}}
        assert b.get_values() == {"v": "stored", "only": 1}


# ---- status, stats, durability --------------------------------------------------------------


def test_status_stats_describe_and_on_durable(tmp_path, clean):
    got = []
    path = tmp_path / "d.json"
    with MergeableStore("a") as a, FilePersister(a, path, on_durable=got.append) as p:
        assert p.get_status() is PersisterStatus.IDLE
        assert p.get_stats() == PersisterStats(loads=0, saves=0)
        assert str(path) in p.describe()
        assert p.store is a and p.path == str(path)
        assert not p.is_auto_loading() and not p.is_auto_saving()
        fill(a)
        p.save()  # on_durable runs on this thread before save returns
        assert got == [DurableInfo(*a.get_mergeable_content_hashes(), 1)]
        assert p.get_status() is PersisterStatus.IDLE
        p.load()
        assert p.get_stats() == PersisterStats(1, 1)


def test_callbacks_may_call_their_persister(tmp_path, clean):
    """Callbacks never run under the persister's locks: they may read its state."""
    seen = []
    holder = {}
    with MergeableStore("a") as a:
        fill(a, 50)
        on_durable = lambda info: seen.append((holder["p"].get_status(), holder["p"].get_stats(), info))  # noqa: E731
        with FilePersister(a, tmp_path / "s.json", on_durable=on_durable) as p:
            holder["p"] = p
            p.save()
            p.start_auto_save()
            a.set_value("v", 1)
            assert p.flush(10)
            assert wait_for(lambda: seen and seen[-1][2].saves == p.get_stats().saves)
        assert len(seen) >= 2 and all(st is not PersisterStatus.LOADING for st, _, _ in seen)
        assert seen[0][1].saves == 1


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_auto_save_then_flush_then_reload_in_a_fresh_store(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    durable = []
    with MergeableStore("a") as a, make(a, tmp_path, on_durable=durable.append) as p:
        p.start_auto_save()
        assert p.is_auto_saving()
        for i in range(20):
            a.set_cell("t", f"r{i}", "c", i)
        a.del_cell("t", "r0", "c")
        assert p.flush(10.0) is True
        hashes = a.get_mergeable_content_hashes()
        # on_durable follows the write that flush waited for (on the persister's thread), with
        # the content hashes made durable: the whole store's, or for an incremental storage the
        # hashes of the last transaction's changes.
        assert wait_for(lambda: durable and durable[-1].saves == p.get_stats().saves)
        if kind not in ("sqlite-incremental", "postgres"):
            assert durable[-1] == DurableInfo(*hashes, p.get_stats().saves)
        p.stop_auto_save()
        assert not p.is_auto_saving()
    with MergeableStore("b") as b, make(b, tmp_path) as p:
        assert p.load()
        assert b.get_mergeable_content_hashes() == hashes
        assert b.get_row_ids("t") == [f"r{i}" for i in range(1, 20)]


def test_auto_save_of_a_plain_store(tmp_path, clean):
    with Store() as a, FilePersister(a, tmp_path / "p.json") as p:
        p.start_auto_save()
        a.set_cell("t", "r", "c", "x")
        with a.transaction():
            a.set_value("v", 1)
            a.set_value("w", 2)
        assert p.flush(10.0)
    with Store() as b, FilePersister(b, tmp_path / "p.json") as p:
        p.load()
        assert b.get_content() == ({"t": {"r": {"c": "x"}}}, {"v": 1, "w": 2})


def test_close_writes_what_is_queued(tmp_path, clean):
    with MergeableStore("a") as a:
        with FilePersister(a, tmp_path / "q.json") as p:
            p.start_auto_save()
            for i in range(100):
                a.set_cell("t", f"r{i}", "c", i)
        hashes = a.get_mergeable_content_hashes()
    with MergeableStore("b") as b, FilePersister(b, tmp_path / "q.json") as p:
        p.load()
        assert b.get_mergeable_content_hashes() == hashes


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_auto_load_sees_another_persisters_write(tmp_path, clean, kind):
    make = dict(KINDS)[kind]
    with MergeableStore("a") as a, MergeableStore("b") as b:
        with make(a, tmp_path, auto_load_interval=0.05) as pa, make(b, tmp_path) as pb:
            a.set_value("mine", "a")
            pa.start_auto_load()
            assert pa.is_auto_loading()
            b.set_cell("pets", "fido", "species", "dog")
            pb.save()
            assert wait_for(lambda: a.get_cell("pets", "fido", "species") == "dog")
            assert a.get_value("mine") == "a"
            b.set_cell("pets", "fido", "legs", 4)
            pb.save()
            assert wait_for(lambda: a.get_cell("pets", "fido", "legs") == 4)
            pa.stop_auto_load()
            assert not pa.is_auto_loading()


WRITER = textwrap.dedent(
    """
    import sys
    import tinybase

    kind, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = tinybase.MergeableStore("other-process")
    if kind == "file":
        p = tinybase.FilePersister(store, path)
    else:
        p = tinybase.SqlitePersister(store, path, kind.split("-")[1])
    with store, p:
        p.load()
        store.set_cell("pets", f"from-process-{n}", "n", n)
        p.save()
    """
)


@pytest.mark.parametrize("kind", ["file", "sqlite-json", "sqlite-incremental"])
def test_auto_load_sees_another_process_write(tmp_path, clean, kind):
    path = tmp_path / ("store.json" if kind == "file" else "store.db")
    make = dict(KINDS)[kind]
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with MergeableStore("a") as a, make(a, tmp_path, auto_load_interval=0.05) as p:
        a.set_value("mine", 1)
        p.start_auto_save()
        p.start_auto_load()
        for n in range(3):
            r = subprocess.run([sys.executable, "-c", WRITER, kind, str(path), str(n)], capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 0, r.stderr
            assert wait_for(lambda: a.get_cell("pets", f"from-process-{n}", "n") == n)
        assert a.get_value("mine") == 1
        assert sorted(a.get_row_ids("pets")) == [f"from-process-{n}" for n in range(3)]


def test_two_auto_saving_persisters_of_one_file_lose_nothing(tmp_path, clean):
    """Saves lock the file and merge what the other wrote first: both stores' changes end up
    in the file."""
    with MergeableStore("a") as a, MergeableStore("b") as b:
        with FilePersister(a, tmp_path / "x.json") as pa, FilePersister(b, tmp_path / "x.json") as pb:
            pa.start_auto_save()
            pb.start_auto_save()
            for i in range(20):
                a.set_cell("t", f"a{i}", "c", i)
                b.set_cell("t", f"b{i}", "c", i)
            assert pa.flush(10) and pb.flush(10)
            pa.save()
    with MergeableStore("c") as c, FilePersister(c, tmp_path / "x.json") as p:
        p.load()
        assert sorted(c.get_row_ids("t")) == sorted([f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)])


# ---- corrupt data ---------------------------------------------------------------------------


def _bad_hash_file(tmp_path):
    with MergeableStore("a") as a:
        fill(a)
        content = json.loads(a.get_mergeable_content_json())
    content[0][2] = (content[0][2] + 1) % (1 << 32)
    return json.dumps(content)


@pytest.mark.parametrize(
    "bad",
    ["not json {", " \n", '{"an": "object"}', "[[{}, \"\", 0]]", "BAD_HASHES"],
    ids=["not-json", "white-space", "object", "short", "bad-hashes"],
)
def test_corrupt_file_raises_and_is_left_untouched(tmp_path, clean, bad):
    path = tmp_path / "bad.json"
    data = (_bad_hash_file(tmp_path) if bad == "BAD_HASHES" else bad).encode()
    path.write_bytes(data)
    with MergeableStore("a") as a, FilePersister(a, path, lock_timeout=1.0) as p:
        a.set_value("keep", "me")
        before = a.get_mergeable_content_json()
        with pytest.raises(CorruptDataError) as info:
            p.load()
        assert info.value.status == 11 and "bad.json" in str(info.value)  # names the file
        assert a.get_mergeable_content_json() == before
        # Saves are refused until the data is moved aside (TinyBase would overwrite it).
        with pytest.raises(InvalidStateError) as refused:
            p.save()
        assert "move_aside_unreadable" in str(refused.value)
        with pytest.raises(InvalidStateError):
            p.start_auto_save()
        with pytest.raises(CorruptDataError):
            p.start_auto_load()
        assert not p.is_auto_loading()
        a.set_value("more", 1)
        time.sleep(0.1)
        assert path.read_bytes() == data
    assert path.read_bytes() == data  # closing wrote nothing either


def test_move_aside_unreadable_keeps_the_data_and_lets_saves_start_afresh(tmp_path, clean):
    path = tmp_path / "bad.json"
    path.write_bytes(b"[[not json")
    with MergeableStore("a") as a, FilePersister(a, path) as p:
        assert p.move_aside_unreadable() is None  # nothing failed yet
        with pytest.raises(CorruptDataError):
            p.load()
        aside = p.move_aside_unreadable()
        assert aside and os.path.exists(aside) and ".corrupt" in aside
        assert open(aside, "rb").read() == b"[[not json"
        fill(a)
        p.save()
        assert json.loads(path.read_text("utf-8")) == json.loads(a.get_mergeable_content_json())
        assert open(aside, "rb").read() == b"[[not json"


def test_corrupt_sqlite_database_raises(tmp_path, clean):
    db = tmp_path / "bad.db"
    with MergeableStore("a") as a, SqlitePersister(a, db) as p:
        fill(a)
        p.save()
    con = sqlite3.connect(db)
    con.execute("UPDATE tinybase SET store = 'not json {'")
    con.commit()
    con.close()
    with MergeableStore("b") as b, SqlitePersister(b, db) as p:
        with pytest.raises(CorruptDataError):
            p.load()
        assert b.get_tables() == {}
        with pytest.raises(InvalidStateError):
            p.save()


def test_save_into_a_missing_folder_is_a_storage_error(tmp_path, clean):
    with MergeableStore("a") as a, FilePersister(a, tmp_path / "missing" / "x.json") as p:
        a.set_value("v", 1)
        with pytest.raises(StorageError) as info:
            p.save()
        assert isinstance(info.value, OSError) and info.value.status == 10


def test_auto_save_errors_reach_on_ignored_error_and_flush(tmp_path, clean):
    folder = tmp_path / "sub"
    folder.mkdir()
    errors = []
    with MergeableStore("a") as a, FilePersister(a, folder / "x.json", on_ignored_error=errors.append) as p:
        p.start_auto_save()
        assert p.flush(10)
        shutil.rmtree(folder)
        with pytest.raises(StorageError):
            for i in range(20):  # the auto-save error is raised by the flush after it
                a.set_value("v", i)
                p.flush(10)
        assert errors and all(isinstance(e, TinyBaseError) for e in errors)
        assert any(isinstance(e, StorageError) and "x.json" in str(e) for e in errors)


# ---- persisting while synchronizing ---------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_persisting_while_synchronizers_write_from_several_threads(tmp_path, clean, kind):
    """The normal case: a store syncs with peers and persists at once. Every change, local or
    merged by the synchronizer, ends up in the storage."""
    with tinybase.LocalBus() as bus, MergeableStore("a") as a, MergeableStore("b") as b, MergeableStore("c") as c:
        with bus.create_synchronizer(a, 0.5) as sa, bus.create_synchronizer(b, 0.5) as sb, bus.create_synchronizer(c, 0.5) as sc:
            with FilePersister(a, tmp_path / "a.json") as pa, dict(KINDS)[kind](b, tmp_path) as pb:
                pa.start_auto_save()
                pb.start_auto_save()
                for s in (sa, sb, sc):
                    s.start_sync()

                def writer(store, name):
                    for i in range(40):
                        if i % 5 == 0:
                            with store.transaction():
                                store.set_cell("t", f"{name}{i}", "x", i)
                                store.set_value(f"v{name}", i)
                        else:
                            store.set_cell("t", f"{name}{i}", "x", i)

                threads = [threading.Thread(target=writer, args=(s, n)) for s, n in ((a, "a"), (b, "b"), (c, "c"), (a, "A"), (c, "C"))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert wait_for(lambda: bus.wait_for_idle(1.0) and same(a, b) and same(b, c), 30)
                assert pa.flush(10) and pb.flush(10)
                hashes = a.get_mergeable_content_hashes()
                assert a.get_row_count("t") == 200
    for make in (lambda s: FilePersister(s, tmp_path / "a.json"), lambda s: dict(KINDS)[kind](s, tmp_path)):
        with MergeableStore("fresh") as fresh, make(fresh) as p:
            assert p.load()
            assert fresh.get_mergeable_content_hashes() == hashes
            assert fresh.get_row_count("t") == 200


# ---- callbacks and lifetimes ----------------------------------------------------------------


def test_a_callback_that_raises_is_reported_not_crashed(tmp_path, errors, clean):
    def boom(info):
        raise RuntimeError("boom in on_durable")

    with MergeableStore("a") as a, FilePersister(a, tmp_path / "x.json", on_durable=boom) as p:
        a.set_value("v", 1)
        p.save()  # on this thread
        p.start_auto_save()
        a.set_value("v", 2)
        assert p.flush(10)  # on the persister's thread
        assert wait_for(lambda: len(errors) >= 2)
    assert all(isinstance(e, RuntimeError) and "boom" in str(e) for e in errors)


def test_callback_error_default_is_a_warning(tmp_path, clean):
    with MergeableStore("a") as a, FilePersister(a, tmp_path / "x.json", on_durable=lambda info: 1 / 0) as p:
        with pytest.warns(tinybase.CallbackErrorWarning):
            p.save()


def test_closed_persister_raises_closed_error(tmp_path, clean):
    with MergeableStore("a") as a:
        p = FilePersister(a, tmp_path / "x.json")
        p.close()
        assert p.closed
        for call in (p.load, p.save, p.start_auto_save, p.start_auto_load, p.get_status, p.get_stats, p.describe, p.flush):
            with pytest.raises(ClosedError):
                call()
        p.close()  # idempotent
        p.destroy()  # idempotent, also after close


def test_destroyed_persister_refuses_commands_but_stays_readable(tmp_path, clean):
    with MergeableStore("a") as a, FilePersister(a, tmp_path / "x.json") as p:
        p.start_auto_save()
        a.set_value("v", 1)
        p.destroy()
        p.destroy()
        with pytest.raises(InvalidStateError):
            p.save()
        with pytest.raises(InvalidStateError):
            p.load()
        assert not p.is_auto_saving()
        assert p.get_stats().saves >= 1
    with MergeableStore("b") as b, FilePersister(b, tmp_path / "x.json") as p:
        p.load()
        assert b.get_value("v") == 1  # destroy wrote what was queued


def test_context_managers_close_everything_and_release_callbacks(tmp_path, clean):
    registry = len(_store._callbacks)
    live = tinybase.debug_live_handles()
    with MergeableStore("a") as a:
        with FilePersister(a, tmp_path / "x.json", on_durable=lambda i: None, on_ignored_error=lambda e: None) as p:
            assert len(_store._callbacks) == registry + 1
            assert tinybase.debug_live_handles() > live
            p.start_auto_save()
            p.start_auto_load()
            a.set_value("v", 1)
        assert p.closed
        assert len(_store._callbacks) == registry  # released by the library when freed
    assert a.closed
    assert tinybase.debug_live_handles() == live


def test_the_persister_keeps_its_store_alive(tmp_path, clean):
    """Closing the store's handle does not pull the store from under its persister."""
    a = MergeableStore("a")
    p = FilePersister(a, tmp_path / "x.json")
    p.start_auto_save()
    a.set_value("v", 1)
    a.close()
    with pytest.raises(ClosedError):
        p.store.get_value("v")
    assert p.flush(10)
    p.save()
    p.close()
    with MergeableStore("b") as b, FilePersister(b, tmp_path / "x.json") as p:
        p.load()
        assert b.get_value("v") == 1


def test_garbage_collection_frees_an_auto_saving_persister(tmp_path, clean):
    with MergeableStore("a") as a:
        p = FilePersister(a, tmp_path / "x.json", on_durable=lambda i: None)
        p.start_auto_save()
        a.set_value("v", 1)
        del p
        gc.collect()
    with MergeableStore("b") as b, FilePersister(b, tmp_path / "x.json") as p:
        p.load()
        assert b.get_value("v") == 1


RACE = textwrap.dedent(
    """
    import sys, threading, time
    import tinybase
    from tinybase import ClosedError, FilePersister, InvalidStateError, MergeableStore

    path = sys.argv[1]
    # close() from inside its own on_durable, on the persister's thread and on the saving thread
    for where in ("auto", "save"):
        s = MergeableStore("a")
        box = {}
        def on_durable(info):
            box["p"].close()
        p = FilePersister(s, path + where, on_durable=on_durable)
        box["p"] = p
        if where == "auto":
            p.start_auto_save()
            s.set_value("v", 1)
            deadline = time.monotonic() + 10
            while not p.closed and time.monotonic() < deadline:
                time.sleep(0.01)
            assert p.closed, "close from on_durable did not happen"
        else:
            p.save()
            assert p.closed
        s.close()

    # close() racing calls on other threads
    for round in range(20):
        s = MergeableStore("a")
        p = FilePersister(s, path + "race")
        p.start_auto_save()
        stop = []
        def work():
            n = 0
            while not stop:
                n += 1
                try:
                    s.set_value("v", n)
                    p.flush(1)
                    p.get_stats()
                    p.save()
                except (ClosedError, InvalidStateError):
                    return
        ts = [threading.Thread(target=work) for _ in range(3)]
        for t in ts:
            t.start()
        time.sleep(0.02)
        p.close()
        stop.append(1)
        for t in ts:
            t.join()
        s.close()
    print("ok")
    """
)


def test_close_inside_a_callback_and_racing_other_threads_does_not_crash_or_hang(tmp_path):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", RACE, str(tmp_path / "x.json")], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


# ---- PostgreSQL -----------------------------------------------------------------------------


def test_postgres_round_trip_auto_save_and_auto_load(tmp_path, clean):
    needs_pg()
    room = f"py-{uuid.uuid4().hex}"
    durable = []
    with MergeableStore("a") as a, MergeableStore("b") as b:
        with PostgresPersister(a, PG_DSN, room, on_durable=durable.append) as pa, PostgresPersister(b, PG_DSN, room, auto_load_interval=0.05) as pb:
            assert pa.describe() and pa.room == room
            assert pb.load() is False  # a new room: nothing stored
            fill(a)
            pa.save()
            assert durable[-1] == DurableInfo(*a.get_mergeable_content_hashes(), 1)
            pb.start_auto_load()
            assert same(a, b)
            pa.start_auto_save()
            a.set_cell("pets", "r9", "name", "late")
            assert pa.flush(10)
            assert wait_for(lambda: b.get_cell("pets", "r9", "name") == "late")
            hashes = a.get_mergeable_content_hashes()
    with MergeableStore("c") as c, PostgresPersister(c, PG_DSN, room) as p:
        assert p.load() and c.get_mergeable_content_hashes() == hashes
    with MergeableStore("d") as d, PostgresPersister(d, PG_DSN, room + "-other") as p:
        assert p.load() is False and d.get_tables() == {}  # rooms are separate


def test_postgres_needs_a_mergeable_store_and_a_reachable_server(clean):
    with Store() as s:
        # With a server: refused as a plain Store; without one the connection may fail first.
        with pytest.raises(InvalidStateError if PG_DSN else (InvalidStateError, StorageError)):
            PostgresPersister(s, PG_DSN or "postgresql://tinybase@127.0.0.1:1/none?connect_timeout=2", "room")
    with MergeableStore() as m:
        # Port 1 refuses connections: an I/O error, raised by the constructor or the first call.
        with pytest.raises(StorageError):
            with PostgresPersister(m, "postgresql://tinybase@127.0.0.1:1/none?connect_timeout=2", "room") as p:
                p.load()


def test_commands_from_inside_an_own_callback_raise_instead_of_deadlocking(tmp_path, clean):
    seen = []
    holder = {}

    def on_durable(info):
        try:
            holder["p"].save()
        except InvalidStateError as e:
            seen.append(e)

    with MergeableStore("a") as a, FilePersister(a, tmp_path / "x.json", on_durable=on_durable) as p:
        holder["p"] = p
        a.set_value("v", 1)
        p.save()
        p.start_auto_save()
        a.set_value("v", 2)
        assert p.flush(10)
        assert wait_for(lambda: len(seen) >= 2)
