import gc
import os
import sys
import time

import pytest

try:
    import tinybase  # noqa: F401  (installed package)
except ImportError:  # running from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import tinybase  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def live_handles():
    """Asserts that the test leaves the library's count of live handles where it found it."""
    import tinybase

    gc.collect()
    before = tinybase.debug_live_handles()
    yield
    gc.collect()
    assert tinybase.debug_live_handles() == before


@pytest.fixture
def errors():
    """Collects exceptions raised inside callbacks instead of warning."""
    import tinybase

    caught = []
    tinybase.set_callback_error_handler(lambda exc, cb: caught.append(exc))
    yield caught
    tinybase.set_callback_error_handler(None)


@pytest.fixture
def clean():
    """The test leaves the callback registry and the library's live handles as it found them."""
    import tinybase
    from tinybase import _store

    gc.collect()
    before = (len(_store._callbacks), tinybase.debug_live_handles())
    yield
    gc.collect()
    assert (len(_store._callbacks), tinybase.debug_live_handles()) == before


def wait_for(cond, timeout=10.0):
    """Polls ``cond`` until it is true (True) or ``timeout`` seconds passed (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()
