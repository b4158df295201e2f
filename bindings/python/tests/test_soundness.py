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


def test_an_old_listener_handle_never_removes_a_new_listener():
    s = Store()
    calls = []
    old = s.add_values_listener(lambda st: None)
    s.del_listener(old.id)
    new = s.add_values_listener(lambda st: calls.append(1))
    assert new.id != old.id
    old.remove()  # the stale handle: removes nothing
    s.set_value("a", 1)
    assert calls == [1]
    assert new.active and s.get_listener_count() == 1
    s.close()


def test_listeners_removing_each_other_on_two_threads_do_not_deadlock():
    s = Store()
    barrier = threading.Barrier(2, timeout=5)
    handles = {}

    def remover(other):
        def cb(st, *args):
            barrier.wait()
            handles[other].remove()

        return cb

    handles["x"] = s.add_value_listener("x", remover("y"))
    handles["y"] = s.add_value_listener("y", remover("x"))

    def both():
        a = threading.Thread(target=s.set_value, args=("x", 1), daemon=True)
        b = threading.Thread(target=s.set_value, args=("y", 1), daemon=True)
        a.start()
        b.start()
        a.join()
        b.join()

    run_within(both)
    assert s.get_listener_count() == 0
    s.close()
