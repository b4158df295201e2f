"""Bad input: errors with the library's message, store left unchanged, no crash."""

import math

import pytest

import tinybase
from tinybase import (
    ABSENT,
    ClosedError,
    InvalidArgumentError,
    InvalidHlcError,
    InvalidJsonError,
    InvalidShapeError,
    InvalidStateError,
    InvalidUtf8Error,
    InvalidValueError,
    MergeableStore,
    Store,
    TinyBaseError,
)


@pytest.fixture
def store():
    s = MergeableStore("m", get_now=lambda: 1_700_000_000_000.0)
    s.set_cell("t", "r", "c", "keep")
    yield s
    s.close()


def unchanged(s):
    assert s.get_content() == ({"t": {"r": {"c": "keep"}}}, {})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers(store, bad):
    with pytest.raises(InvalidValueError) as e:
        store.set_cell("t", "r", "c", bad)
    assert e.value.status == 4 and "finite" in e.value.message
    with pytest.raises(InvalidValueError):
        store.set_value("v", bad)
    with pytest.raises(InvalidValueError):
        store.set_row("t", "r", {"c": bad})
    with pytest.raises(InvalidValueError):
        store.set_cell("t", "r", "c", {"x": bad})
    unchanged(store)


@pytest.mark.parametrize("bad", [object(), b"bytes", {1, 2}, 1j, ABSENT])
def test_unsupported_value_types(store, bad):
    with pytest.raises(InvalidValueError):
        store.set_cell("t", "r", "c", bad)
    with pytest.raises(InvalidValueError):
        store.set_partial_row("t", "r", {"c": bad})
    unchanged(store)


def test_huge_int(store):
    with pytest.raises(InvalidValueError):
        store.set_cell("t", "r", "c", 10**400)
    unchanged(store)


@pytest.mark.parametrize("bad", [None, 1, 1.5, b"t", ["t"]])
def test_wrong_id_types(store, bad):
    with pytest.raises(TypeError):
        store.set_cell(bad, "r", "c", 1)
    with pytest.raises(TypeError):
        store.get_cell("t", bad, "c")
    unchanged(store)


def test_reserved_strings(store):
    for bad in ("\ufffc", "\ufffdoops"):
        with pytest.raises(InvalidValueError) as e:
            store.set_cell("t", "r", "c", bad)
        assert "reserved" in str(e.value)
        with pytest.raises(InvalidValueError):
            store.set_tables({"t": {"r": {"c": bad}}})
    unchanged(store)


def test_invalid_json(store):
    for fn, args in [
        (store.set_json, ("[{",)),
        (store.set_tables_json, ("{'a':1}",)),
        (store.apply_changes_json, ("nope",)),
        (store.set_cell_json, ("t", "r", "c", "{")),
        (store.apply_mergeable_changes_json, ("[[",)),
        (store.set_mergeable_content_json, ("",)),
        (store.get_mergeable_table_diff_json, ("{",)),
    ]:
        with pytest.raises(InvalidJsonError) as e:
            fn(*args)
        assert e.value.message and e.value.status == 3
    unchanged(store)


def test_invalid_shapes(store):
    with pytest.raises(InvalidShapeError):
        store.set_tables_json("[1]")
    with pytest.raises(InvalidShapeError):
        store.set_content_json('{"a":1}')
    with pytest.raises(InvalidShapeError):
        store.set_tables({})
    with pytest.raises(InvalidShapeError):
        store.set_values({})
    with pytest.raises(InvalidShapeError):
        store.set_tables({"t": "not a table"})
    with pytest.raises(TinyBaseError):
        store.apply_mergeable_changes_json('{"x":1}')
    unchanged(store)


def test_far_future_hlc(store):
    other = MergeableStore("o", get_now=lambda: 1_700_000_000_000.0 + 3_600_000)
    other.set_cell("t", "r", "c", "future")
    with pytest.raises(InvalidHlcError):
        store.apply_mergeable_changes_json(other.get_mergeable_content_json())
    unchanged(store)
    with pytest.raises((InvalidHlcError, InvalidShapeError)):
        store.apply_mergeable_changes_json('[[{"t":[{"r":[{"c":[1,"not an hlc"]},""]},""]},""],[{},""],1]')
    unchanged(store)


def test_invalid_utf8_and_nul(store):
    with pytest.raises(InvalidUtf8Error) as e:
        store.set_cell("t\ud800", "r", "c", 1)
    assert e.value.status == 2
    with pytest.raises(InvalidUtf8Error):
        store.set_cell("t", "r", "c", "lone \udc00")
    with pytest.raises(InvalidArgumentError):
        store.set_cell("t\0", "r", "c", 1)
    unchanged(store)


def test_transaction_state_errors(store):
    with pytest.raises(InvalidStateError):
        store.finish_transaction()
    # finishing on another thread is refused; the owning thread can still finish it
    import threading

    store.start_transaction()
    errs = []
    th = threading.Thread(target=lambda: errs.append(_catch(store.finish_transaction)))
    th.start()
    th.join(5)
    store.finish_transaction(rollback=True)
    assert errs and isinstance(errs[0], InvalidStateError)
    unchanged(store)


def _catch(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    return None


def test_closed_store():
    s = Store()
    s.close()
    with pytest.raises(ClosedError):
        s.set_cell("t", "r", "c", 1)
    with pytest.raises(ClosedError):
        s.get_tables()
    with pytest.raises(InvalidStateError):  # ClosedError is an InvalidStateError
        s.add_tables_listener(lambda st: None)
    m = MergeableStore()
    m.close()
    with pytest.raises(ClosedError):
        m.get_mergeable_content_json()
    with pytest.raises(ClosedError):
        MergeableStore().merge(m)
    q = tinybase.EventQueue()
    q.close()
    with pytest.raises(ClosedError):
        q.poll()


def test_listener_argument_errors():
    s = Store()
    with pytest.raises(TypeError):
        s.add_cell_listener(None, None, None, "not callable")
    with pytest.raises(ValueError):
        s.add_listener(99, (), lambda *a: None)
    with pytest.raises(TypeError):
        MergeableStore(get_now=5)
    assert s.get_listener_count() == 0
    s.del_listener(123456)  # unknown ids are ignored


def test_error_class_hierarchy():
    assert issubclass(InvalidJsonError, ValueError) and issubclass(InvalidJsonError, TinyBaseError)
    assert tinybase.NullParameter is tinybase.NullParameterError
    for cls in (tinybase.NullParameterError, tinybase.PanicError, InvalidStateError):
        assert issubclass(cls, TinyBaseError)
