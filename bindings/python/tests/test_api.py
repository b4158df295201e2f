"""The Store and MergeableStore API."""

import json

import pytest

import tinybase
from tinybase import ABSENT, MergeableStore, Store

NOW = 1_700_000_000_000.0


def clock(start=NOW):
    t = [start]

    def now():
        return t[0]

    return t, now


@pytest.fixture(params=["plain", "mergeable"])
def store(request):
    s = Store() if request.param == "plain" else MergeableStore("s1", get_now=lambda: NOW)
    yield s
    s.close()


def test_version_and_library():
    assert tinybase.version() == tinybase.__version__
    assert str(tinybase.library_path) in tinybase.library_candidates()


def test_cells_round_trip(store):
    cells = {"s": "dog", "i": 4, "f": 1.5, "t": True, "fa": False, "n": None, "o": {"a": [1, {"b": None}]}, "a": [1, "x", True], "u": "🐶 é\n"}
    for k, v in cells.items():
        assert store.set_cell("pets", "fido", k, v) is store
    for k, v in cells.items():
        got = store.get_cell("pets", "fido", k)
        assert got == v and type(got) is type(v), k
    assert store.get_row("pets", "fido") == cells
    assert store.get_table("pets") == {"fido": cells}
    assert store.get_tables() == {"pets": {"fido": cells}}
    assert store.get_cell_ids("pets", "fido") == list(cells)
    assert store.get_table_cell_ids("pets") == list(cells)


def test_absent_versus_null(store):
    store.set_cell("t", "r", "null", None)
    assert store.get_cell("t", "r", "null") is None
    assert store.get_cell("t", "r", "missing") is ABSENT
    assert not ABSENT and repr(ABSENT) == "tinybase.ABSENT"
    assert store.get_cell("t", "r", "missing", default=None) is None
    assert store.get_cell("t", "r", "null", default=0) is None
    assert store.has_cell("t", "r", "null") and not store.has_cell("t", "r", "missing")
    store.set_value("v", None)
    assert store.get_value("v") is None and store.get_value("w") is ABSENT
    assert store.has_value("v") and not store.has_value("w")


def test_string_with_nul_and_numbers(store):
    store.set_cell("t", "r", "c", "a\0b")
    assert store.get_cell("t", "r", "c") == "a\0b"
    store.set_cell("t", "r", "big", 2**53)
    assert store.get_cell("t", "r", "big") == 2**53
    store.set_cell("t", "r", "e", 1e-7)
    assert store.get_cell("t", "r", "e") == 1e-7
    store.set_cell("t", "r", "f", 2.0)
    assert store.get_cell("t", "r", "f") == 2 and isinstance(store.get_cell("t", "r", "f"), int)


def test_has_ids_counts_and_deletes(store):
    assert not store.has_tables() and not store.has_values()
    store.set_row("t", "r1", {"a": 1}).set_row("t", "r2", {"b": 2}).set_row("u", "r", {"c": 3})
    assert store.has_tables() and store.has_table("t") and not store.has_table("x")
    assert store.has_row("t", "r1") and not store.has_row("t", "r3")
    assert store.has_table_cell("t", "b") and not store.has_table_cell("t", "c")
    assert store.get_table_ids() == ["t", "u"]
    assert store.get_row_ids("t") == ["r1", "r2"]
    assert store.get_row_count("t") == 2 and store.get_row_count("nope") == 0
    store.del_cell("t", "r1", "a")
    assert not store.has_row("t", "r1")
    store.del_row("t", "r2")
    assert not store.has_table("t")
    store.del_table("u")
    assert not store.has_tables()
    store.set_values({"a": 1, "b": "x"})
    assert store.get_value_ids() == ["a", "b"] and store.get_values() == {"a": 1, "b": "x"}
    store.del_value("a")
    assert store.get_values() == {"b": "x"}
    store.del_values()
    assert not store.has_values()
    store.set_tables({"t": {"r": {"c": 1}}})
    store.del_tables()
    assert store.get_tables() == {}


def test_partial_setters_and_mappers(store):
    store.set_row("t", "r", {"a": 1, "b": 2})
    store.set_partial_row("t", "r", {"b": 3, "c": 4})
    assert store.get_row("t", "r") == {"a": 1, "b": 3, "c": 4}
    store.set_row("t", "r", {"z": 0})
    assert store.get_row("t", "r") == {"z": 0}
    store.set_partial_values({"x": 1}).set_partial_values({"y": 2})
    assert store.get_values() == {"x": 1, "y": 2}
    store.set_cell("t", "r", "z", lambda old: old + 10)
    assert store.get_cell("t", "r", "z") == 10
    store.set_value("x", lambda old: old * 5)
    assert store.get_value("x") == 5


def test_add_row(store):
    assert store.add_row("t", {"a": 1}) == "0"
    assert store.add_row("t", {"a": 2}) == "1"
    store.del_row("t", "0")
    assert store.add_row("t", {"a": 3}) == "0"  # reuse_row_ids=True by default
    assert store.add_row("t", {"a": 4}, reuse_row_ids=False) == "2"
    assert store.add_row_json("t", '{"a":5}') in ("3",)


def test_content_and_changes(store):
    store.set_content(({"t": {"r": {"c": 1, "o": {"k": [1]}}}}, {"v": True}))
    tables, values = store.get_content()
    assert tables == {"t": {"r": {"c": 1, "o": {"k": [1]}}}} and values == {"v": True}
    store.apply_changes([{"t": {"r": {"c": ABSENT, "d": 2}}, "u": {"r": {"x": "y"}}}, {"v": ABSENT, "w": 1}, 1])
    assert store.get_tables() == {"t": {"r": {"o": {"k": [1]}, "d": 2}}, "u": {"r": {"x": "y"}}}
    assert store.get_values() == {"w": 1}
    store.apply_changes([{"u": ABSENT}, {}, 1])
    assert store.get_table_ids() == ["t"]


def test_json_text_methods(store):
    store.set_json('[{"t":{"r":{"c":1,"o":"\\ufffd{\\"a\\":1}"}}},{"v":"x"}]')
    assert store.get_cell("t", "r", "o") == {"a": 1}
    assert json.loads(store.get_json()) == [{"t": {"r": {"c": 1, "o": '\ufffd{"a":1}'}}}, {"v": "x"}]
    assert json.loads(store.get_tables_json()) == {"t": {"r": {"c": 1, "o": '\ufffd{"a":1}'}}}
    assert json.loads(store.get_values_json()) == {"v": "x"}
    assert json.loads(store.get_content_json()) == [{"t": {"r": {"c": 1, "o": {"a": 1}}}}, {"v": "x"}]
    store.set_tables_json('{"a":{"b":{"c":[1,2]}}}')
    assert store.get_tables() == {"a": {"b": {"c": [1, 2]}}}
    store.set_values_json('{"q":1}')
    store.set_table_json("t", '{"r":{"c":2}}').set_row_json("t", "r2", '{"c":3}')
    store.set_partial_row_json("t", "r2", '{"d":4}').set_cell_json("t", "r", "e", '{"x":[]}')
    store.set_value_json("q", "[1]").set_partial_values_json('{"z":null}')
    store.set_content_json('[{"t":{"r":{"c":1}}},{}]')
    assert store.get_content() == ({"t": {"r": {"c": 1}}}, {})
    store.apply_changes_json('[{"t":{"r":{"c":"\\ufffc"}}},{"n":1},1]')
    assert store.get_content() == ({}, {"n": 1})


def test_transaction_commit_and_rollback(store):
    calls = []
    store.add_tables_listener(lambda s: calls.append("tables"))
    with store.transaction() as s:
        assert s is store
        store.set_cell("t", "r", "a", 1)
        store.set_cell("t", "r", "b", 2)
        assert calls == []
    assert calls == ["tables"]
    with pytest.raises(KeyError):
        with store.transaction():
            store.set_cell("t", "r", "a", 100)
            store.del_cell("t", "r", "b")
            raise KeyError("boom")
    assert store.get_row("t", "r") == {"a": 1, "b": 2}
    assert store.transaction(lambda s: s.set_cell("t", "r", "c", 3) and 42) == 42
    assert store.get_cell("t", "r", "c") == 3
    store.transaction(lambda s: s.set_cell("t", "r", "d", 4), do_rollback=lambda s: True)
    assert not store.has_cell("t", "r", "d")
    store.start_transaction()
    store.set_value("v", 1)
    store.start_transaction()  # nested: joins the outer one
    store.set_value("w", 2)
    store.finish_transaction()
    store.finish_transaction(rollback=True)
    assert store.get_values() == {}


def test_transaction_changes_in_did_finish(store):
    seen = []
    store.set_cell("t", "r", "gone", 1)
    store.add_did_finish_transaction_listener(lambda s: seen.append(s.get_transaction_changes()))
    with store.transaction():
        store.set_cell("t", "r", "c", 1)
        store.del_cell("t", "r", "gone")
        store.set_value("v", {"a": 1})
        inside = store.get_transaction_changes()
    assert inside == [{"t": {"r": {"c": 1, "gone": ABSENT}}}, {"v": {"a": 1}}, 1]
    assert seen == [inside]
    assert store.get_transaction_changes() == [{}, {}, 1]


def test_clone_and_close(live_handles):
    s = Store()
    c = s.clone()
    s.set_cell("t", "r", "c", 1)
    s.close()
    assert s.closed and c.get_cell("t", "r", "c") == 1
    s.close()  # idempotent
    with c:
        pass
    assert c.closed
    with MergeableStore("x") as m:
        m2 = m.clone()
        m.set_value("v", 1)
        assert m2.get_value("v") == 1
        m2.close()


def test_gc_frees_handles(live_handles):
    for _ in range(10):
        s = MergeableStore()
        s.set_cell("t", "r", "c", "x")
        s.add_cell_listener(None, None, None, lambda *a: None)
        del s


def test_mergeable_wire_and_decoded():
    t, now = clock()
    a = MergeableStore("a", get_now=now)
    a.set_cell("t", "r", "o", {"x": [1, 2]}).set_value("v", "s")
    wire = a.get_mergeable_content_json()
    assert '\ufffd{\\"x\\":[1,2]}' in wire or "\\ufffd" in wire or "\ufffd" in wire
    decoded = a.get_mergeable_content()
    assert decoded[0][0]["t"][0]["r"][0]["o"][0] == {"x": [1, 2]}
    assert json.loads(a.get_mergeable_content_json(decoded=True)) == decoded
    b = MergeableStore("b", get_now=now)
    b.apply_mergeable_changes_json(wire)
    assert b.get_content() == a.get_content()
    assert b.get_mergeable_content_hashes() == a.get_mergeable_content_hashes()
    c = MergeableStore("c", get_now=now)
    c.set_mergeable_content_json(wire)
    assert c.get_mergeable_content() == decoded
    d = MergeableStore("d", get_now=now)
    d.set_mergeable_content(decoded)
    e = MergeableStore("e", get_now=now)
    e.apply_mergeable_changes(decoded)
    assert d.get_content() == e.get_content() == a.get_content()
    assert a.compute_content_hashes() == a.get_mergeable_content_hashes()
    assert json.loads(a.get_mergeable_content_hashes_json()) == list(a.get_mergeable_content_hashes())
    for s in (a, b, c, d, e):
        s.close()


def test_hlc_uses_clock():
    t, now = clock(1_700_000_000_000.0)
    a = MergeableStore("a", get_now=now)
    a.set_cell("t", "r", "c", 1)
    hlc1 = a.get_mergeable_content()[0][0]["t"][0]["r"][0]["c"][1]
    t[0] += 60_000
    a.set_cell("t", "r", "c", 2)
    hlc2 = a.get_mergeable_content()[0][0]["t"][0]["r"][0]["c"][1]
    assert hlc2 > hlc1
    b = MergeableStore("a", get_now=lambda: 1_700_000_000_000.0)
    b.set_cell("t", "r", "c", 1)
    assert b.get_mergeable_content()[0][0]["t"][0]["r"][0]["c"][1] == hlc1  # deterministic


def test_transaction_mergeable_changes():
    a = MergeableStore("a", get_now=lambda: NOW)
    b = MergeableStore("b", get_now=lambda: NOW)
    sent = []
    a.add_did_finish_transaction_listener(lambda s: sent.append(s.get_transaction_mergeable_changes_json()))
    decoded = []
    a.add_did_finish_transaction_listener(lambda s: decoded.append(s.get_transaction_mergeable_changes(True)))
    with a.transaction():
        a.set_cell("t", "r", "c", [1])
        a.set_value("v", 2)
    assert len(sent) == 1 and "\ufffd" in json.loads(sent[0])[0][0]["t"][0]["r"][0]["c"][0]
    assert decoded[0][0][0]["t"][0]["r"][0]["c"][0] == [1]
    b.apply_mergeable_changes_json(sent[0])
    assert b.get_content() == a.get_content()


def test_merge_and_default_content():
    a = MergeableStore("a", get_now=lambda: NOW)
    b = MergeableStore("b", get_now=lambda: NOW + 1)
    a.set_cell("t", "r", "a", 1)
    b.set_cell("t", "r", "b", 2)
    a.merge(b)
    assert a.get_content() == b.get_content() == ({"t": {"r": {"a": 1, "b": 2}}}, {})
    a.merge(a)
    with pytest.raises(TypeError):
        a.merge(Store())
    c = MergeableStore("c", get_now=lambda: NOW)
    c.set_value("v", "mine")
    c.set_default_content(({"t": {"r": {"x": 1}}}, {"v": "default", "w": "default"}))
    assert c.get_values() == {"v": "mine", "w": "default"}
    assert c.get_tables() == {"t": {"r": {"x": 1}}}
    c.set_default_content_json('[{},{"z":1}]')
    assert c.get_value("z") == 1


def test_diff_protocol_syncs_two_stores():
    a = MergeableStore("a", get_now=lambda: NOW)
    b = MergeableStore("b", get_now=lambda: NOW + 5)
    for i in range(30):
        a.set_cell(f"t{i % 3}", f"r{i}", "c", i)
    b.set_cell("t0", "r0", "c", "b wins")
    b.set_value("bv", 1)
    a.set_value("av", 2)
    # what a synchronizer does: tables -> rows -> cells, values, both directions
    for src, dst in ((a, b), (b, a)):
        new_tables, diff_tables = src.get_mergeable_table_diff(dst.get_mergeable_table_hashes())
        dst.apply_mergeable_changes([new_tables, [{}, "", 0], 1])
        row_hashes = dst.get_mergeable_row_hashes(diff_tables)
        new_rows, diff_rows = src.get_mergeable_row_diff(row_hashes)
        dst.apply_mergeable_changes([new_rows, [{}, "", 0], 1])
        cell_hashes = dst.get_mergeable_cell_hashes(diff_rows)
        dst.apply_mergeable_changes([src.get_mergeable_cell_diff(cell_hashes), [{}, "", 0], 1])
        dst.apply_mergeable_changes([[{}, "", 0], src.get_mergeable_value_diff(dst.get_mergeable_value_hashes()), 1])
    assert a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes()
    assert a.get_content() == b.get_content()
    assert a.get_cell("t0", "r0", "c") == "b wins"
    # JSON in/out forms
    text = a.get_mergeable_table_diff_json(b.get_mergeable_table_hashes_json())
    assert json.loads(text) == a.get_mergeable_table_diff(b.get_mergeable_table_hashes())
    assert json.loads(a.get_mergeable_row_hashes_json("{}")) == {}
    assert json.loads(a.get_mergeable_row_diff_json("{}")) == [[{}, "", 0], {}] or isinstance(json.loads(a.get_mergeable_row_diff_json("{}")), list)
    assert isinstance(json.loads(a.get_mergeable_cell_hashes_json("{}")), dict)
    assert isinstance(json.loads(a.get_mergeable_cell_diff_json("{}")), list)
    assert json.loads(a.get_mergeable_value_hashes_json()) == a.get_mergeable_value_hashes()
    assert isinstance(json.loads(a.get_mergeable_value_diff_json("{}")), list)


def test_random_unique_id_and_system_clock():
    a, b = MergeableStore(), MergeableStore()
    a.set_cell("t", "r", "c", 1)
    b.set_cell("t", "r", "c", 1)
    hlc_a = a.get_mergeable_content()[0][0]["t"][0]["r"][0]["c"][1]
    hlc_b = b.get_mergeable_content()[0][0]["t"][0]["r"][0]["c"][1]
    assert hlc_a[-4:] != hlc_b[-4:] or hlc_a != hlc_b


def test_listener_count_and_call_listener():
    s = Store()
    calls = []
    l1 = s.add_cell_listener("t", None, None, lambda *a: calls.append(a[1:]))
    s.add_value_ids_listener(lambda st: None)
    assert s.get_listener_count() == 2
    s.set_row("t", "r", {"a": 1, "b": 2})
    calls.clear()
    l1.call()
    assert sorted(calls) == [("t", "r", "a", 1, 1), ("t", "r", "b", 2, 2)]
    l1.remove()
    assert s.get_listener_count() == 1
