import gc
import os
import sys

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
