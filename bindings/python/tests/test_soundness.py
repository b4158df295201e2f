"""Misuse that must be refused or repaired rather than crash or hang: transactions finished by
code that does not own them, threads ending inside start_transaction, listener ids reused,
listeners removing each other across threads. Every wait has a deadline."""

import threading

import pytest

from tinybase import InvalidStateError, Store


def run_within(fn, seconds=10.0):
    """Runs fn on a daemon thread; fails the test when it does not return in time."""
    result = {}

    def main():
        result["value"] = fn()

    t = threading.Thread(target=main, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "deadline passed (deadlock)"
    return result.get("value")


def _finish_refused(st):
    try:
        st.finish_transaction(rollback=True)
    except InvalidStateError:
        return True
    return False


def test_a_transaction_listener_cannot_finish_the_transaction():
    s = Store()
    seen = []
    s.add_will_finish_transaction_listener(lambda st: seen.append(_finish_refused(st)))
    with s.transaction():
        s.set_value("a", 1)
    assert seen == [True]
    assert s.get_values() == {"a": 1}
    with pytest.raises(InvalidStateError):
        s.finish_transaction()
    run_within(lambda: s.set_value("c", 3))
    assert s.get_value("c") == 3
    s.close()


def test_a_thread_ending_inside_start_transaction_is_rolled_back():
    s = Store()
    s.set_value("kept", 1)

    def abandon():
        s.start_transaction()
        s.set_value("lost", 2)

    t = threading.Thread(target=abandon)
    t.start()
    t.join()
    run_within(lambda: s.set_value("after", 3))
    assert s.get_values() == {"kept": 1, "after": 3}
    s.close()
