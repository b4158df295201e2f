"""Build hook: bundles the tinybase shared library into the package when it has been built.

``pip install ./bindings/python`` copies ``target/release/libtinybase.so`` (or the platform's
equivalent; ``$TINYBASE_LIBRARY`` if set) into ``tinybase/_lib/`` of the installed package, and
records the source checkout so the package can still find ``target/`` there. Installing also
works when no library has been built: the package then looks for it at import time.
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if sys.platform == "darwin":
    NAMES = ["libtinybase.dylib"]
elif os.name == "nt":
    NAMES = ["tinybase.dll"]
else:
    NAMES = ["libtinybase.so"]


def find_library():
    env = os.environ.get("TINYBASE_LIBRARY")
    if env and Path(env).is_file():
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    for name in NAMES:
        p = target / "release" / name
        if p.is_file():
            return p
    return None


LIBRARY = find_library()


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        pkg = Path(self.build_lib) / "tinybase"
        info = pkg / "_build_info.py"
        root = str(REPO) if (REPO / "Cargo.toml").is_file() else ""
        info.write_text(f"# written by setup.py\nSOURCE_ROOT = {root!r}\n")
        if LIBRARY is not None:
            dest = pkg / "_lib"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(LIBRARY, dest / LIBRARY.name)
            print(f"tinybase: bundled {LIBRARY}", file=sys.stderr)
        else:
            print("tinybase: no built library found (run `cargo build --release`); the package will "
                  "look for it at import time", file=sys.stderr)


class MaybeBinaryDistribution(Distribution):
    """A wheel holding the native library is platform-specific."""

    def has_ext_modules(self):
        return LIBRARY is not None


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=MaybeBinaryDistribution)
