"""Checks what ``python -m build bindings/python`` produced (run by run_tests.sh).

Usage: ``python check_dist.py DIST_DIR``. Fails (exit status 1, with the reason) unless DIST_DIR
holds exactly one sdist and one wheel of the package, where:

- the wheel is tagged ``py3-none-<this platform>`` and carries the library in ``tinybase/_lib/``;
- the sdist carries the crate under ``rust/`` (the files a build needs, a ``Cargo.toml`` whose
  workspace is the crate alone) and nothing of ``server/``.
"""

import re
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

CRATE_FILES = ["Cargo.toml", "build.rs", "cbindgen.toml", "src/lib.rs", "src/ffi/mod.rs", "include/tinybase.h"]


def fail(message: str) -> None:
    """Stops with ``message``."""
    sys.exit(f"check_dist: {message}")


def check_wheel(wheel: Path, version: str) -> None:
    """The file name's tags and the bundled library."""
    platform = re.sub(r"[-.]", "_", sysconfig.get_platform())
    expected = f"tinybase-{version}-py3-none-{platform}.whl"
    if wheel.name != expected:
        fail(f"wheel is {wheel.name}, expected {expected}")
    with zipfile.ZipFile(wheel) as z:
        libs = [n for n in z.namelist() if n.startswith("tinybase/_lib/")]
        tag = z.read(f"tinybase-{version}.dist-info/WHEEL").decode()
    if len(libs) != 1 or not re.search(r"tinybase\.(so|dylib|dll)$", libs[0]):
        fail(f"wheel should hold one library in tinybase/_lib/, holds {libs}")
    if f"Tag: py3-none-{platform}" not in tag or "Root-Is-Purelib: false" not in tag:
        fail(f"WHEEL metadata has the wrong tag:\n{tag}")


def check_sdist(sdist: Path, version: str) -> None:
    """The vendored crate, its one-crate workspace, no server."""
    root = f"tinybase-{version}"
    with tarfile.open(sdist) as t:
        names = set(t.getnames())
        manifest = t.extractfile(f"{root}/rust/Cargo.toml").read().decode()
    missing = [f for f in CRATE_FILES if f"{root}/rust/{f}" not in names]
    if missing:
        fail(f"sdist lacks the crate's {missing}")
    if f"{root}/setup.py" not in names or f"{root}/tinybase/_native.py" not in names:
        fail("sdist lacks the package's setup.py or sources")
    if any("/server/" in n or n.endswith("/server") for n in names):
        fail("sdist carries server/")
    members = re.findall(r"(?m)^\s*members\s*=.*$", manifest)
    if members != ['members = ["."]']:
        fail(f"sdist's Cargo.toml workspace should be the crate alone, its members lines are {members}")


def main() -> None:
    """Finds the two files and checks them."""
    dist = Path(sys.argv[1])
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist in {dist}, found {[p.name for p in dist.iterdir()]}")
    version = sdists[0].name[len("tinybase-"):-len(".tar.gz")]
    check_wheel(wheels[0], version)
    check_sdist(sdists[0], version)
    print(f"check_dist: {wheels[0].name} and {sdists[0].name} are as expected")


if __name__ == "__main__":
    main()
