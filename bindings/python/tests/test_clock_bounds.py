"""The clock's bounds: a get_now at or past 2^42 ms, or an HLC counter used up at the largest
time, refuses local writes (TinyBase throws tinybase:13) and leaves the store untouched."""

import pytest

from tinybase import InvalidStateError, MergeableStore

MAX = 2**42 - 1


def snapshot(s):
    return s.get_mergeable_content_json(), s.get_json()


def test_get_now_past_2_pow_42_refuses_writes(live_handles):
    t = [1_700_000_000_000.0]
    s = MergeableStore("p", get_now=lambda: t[0])
    s.set_cell("t", "r", "c", 1)
    before = snapshot(s)
    for far in (MAX + 1.0, 2.0**53, 1e300):
        t[0] = far
        with pytest.raises(InvalidStateError, match="tinybase:13"):
            s.set_cell("t", "r", "c", 2)
        with pytest.raises(InvalidStateError, match="tinybase:13"):
            s.set_value("v", 2)
        s.del_cell("t", "r", "c")  # reports nothing, changes nothing
        assert snapshot(s) == before
    t[0] = 1_700_000_000_001.0
    s.set_cell("t", "r", "c", 3)
    assert s.get_cell("t", "r", "c") == 3
    s.close()


def test_write_after_a_remote_hlc_at_the_end_of_time_is_refused(live_handles):
    s = MergeableStore("p", get_now=lambda: float(MAX))
    s.apply_mergeable_changes_json('[[{"t":[{"r":[{"c":[1,"zzzzzzzzzzzzzzzz"]}]}]}],[{}],1]')
    before = snapshot(s)
    with pytest.raises(InvalidStateError, match="tinybase:13"):
        s.set_cell("t", "r", "c", 2)
    assert snapshot(s) == before
    s.close()
