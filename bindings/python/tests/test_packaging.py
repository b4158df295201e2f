"""How the package finds its library, and the version check it makes at import.

Each case imports a copy of the package in a fresh interpreter (the loader runs once, at import),
with the library placed where the case needs it and, for the version checks, the copy's
``_version.py`` claiming another version: the real loader then meets a library that does not
report the version it expects.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tinybase

REPO = Path(__file__).resolve().parents[3]
PACKAGE = Path(tinybase.__file__).resolve().parent
LIBRARY = Path(tinybase.library_path)


def copy_package(dest, *, version=None, bundle=False):
    """A copy of the imported package under ``dest``: optionally another ``__version__``, and
    optionally the real library bundled in its ``_lib/``. Returns the folder to run Python in."""
    shutil.copytree(PACKAGE, dest / "tinybase", ignore=shutil.ignore_patterns("_lib", "__pycache__"))
    if version is not None:
        (dest / "tinybase" / "_version.py").write_text(f"__version__ = {version!r}\n")
    if bundle:
        (dest / "tinybase" / "_lib").mkdir()
        shutil.copy2(LIBRARY, dest / "tinybase" / "_lib" / LIBRARY.name)
    return dest


def import_tinybase(cwd, **env_changes):
    """Imports ``tinybase`` in a fresh interpreter in ``cwd``: the exception's class name and
    message, or ``OK`` and the library's path. ``None`` values remove the variable."""
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)
    env.pop("TINYBASE_LIBRARY", None)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    code = textwrap.dedent(
        """
        try:
            import tinybase
        except ImportError as e:
            print(type(e).__name__); print(e)
        else:
            print("OK"); print(tinybase.library_path)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_versions_agree():
    """The package, the library, the crate and the C header all say the same version."""
    assert tinybase.version() == tinybase.__version__
    cargo = (REPO / "Cargo.toml").read_text()
    assert re.search(r'(?m)^version = "([^"]+)"', cargo).group(1) == tinybase.__version__
    header = (REPO / "include" / "tinybase.h").read_text()
    assert f'#define TB_VERSION_STRING "{tinybase.__version__}"' in header


def test_installed_package_carries_its_library():
    """Installed (not imported from the source tree), the package uses the library inside it."""
    if PACKAGE == REPO / "bindings" / "python" / "tinybase":
        pytest.skip("imported from the source tree: run_tests.sh runs this suite against the installed wheel")
    assert LIBRARY.parent == PACKAGE / "_lib"


def test_bundled_library_is_found_without_environment(tmp_path):
    out = import_tinybase(copy_package(tmp_path, bundle=True)).splitlines()
    assert out == ["OK", str(tmp_path / "tinybase" / "_lib" / LIBRARY.name)]


def test_tinybase_library_overrides_the_bundled_one(tmp_path):
    other = tmp_path / "elsewhere" / LIBRARY.name
    other.parent.mkdir()
    shutil.copy2(LIBRARY, other)
    (tmp_path / "pkg").mkdir()
    out = import_tinybase(copy_package(tmp_path / "pkg", bundle=True), TINYBASE_LIBRARY=str(other)).splitlines()
    assert out == ["OK", str(other)]


def test_library_not_found_lists_paths(tmp_path):
    copy_package(tmp_path)
    out = import_tinybase(tmp_path, TINYBASE_LIBRARY=str(tmp_path / "nowhere.so"), CARGO_TARGET_DIR=str(tmp_path / "target"))
    assert out.startswith("LibraryNotFoundError\n"), out
    assert "nowhere.so" in out and str(tmp_path / "target" / "release") in out
    assert "_lib" in out and "TINYBASE_LIBRARY" in out


def test_wrong_version_from_tinybase_library(tmp_path):
    """A $TINYBASE_LIBRARY of another version: the error names both versions and the variable."""
    copy_package(tmp_path, version="9.9.9", bundle=True)
    out = import_tinybase(tmp_path, TINYBASE_LIBRARY=str(LIBRARY))
    assert out.startswith("LibraryVersionError\n"), out
    assert f"is version {tinybase.__version__}, not 9.9.9" in out
    assert str(LIBRARY) in out and "Unset TINYBASE_LIBRARY" in out


def test_wrong_version_bundled(tmp_path):
    """A bundled library of another version (a broken installation): the error says reinstall."""
    copy_package(tmp_path, version="9.9.9", bundle=True)
    out = import_tinybase(tmp_path)
    assert out.startswith("LibraryVersionError\n"), out
    assert "bundled with the package" in out and "reinstall" in out
    assert f"is version {tinybase.__version__}, not 9.9.9" in out


def test_wrong_version_in_cargo_target(tmp_path):
    """Used from a source tree whose build is of another version: the error says rebuild."""
    target = tmp_path / "target" / "release"
    target.mkdir(parents=True)
    shutil.copy2(LIBRARY, target / LIBRARY.name)
    (tmp_path / "pkg").mkdir()
    out = import_tinybase(copy_package(tmp_path / "pkg", version="9.9.9"), CARGO_TARGET_DIR=str(tmp_path / "target"))
    assert out.startswith("LibraryVersionError\n"), out
    assert "from a cargo target directory" in out and "cargo build --release" in out
    assert str(target / LIBRARY.name) in out


def test_wrong_version_error_is_an_import_error():
    assert issubclass(tinybase.LibraryVersionError, ImportError)
    assert issubclass(tinybase.LibraryNotFoundError, ImportError)
