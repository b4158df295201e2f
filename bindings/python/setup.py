"""Build script: compiles the tinybase Rust library and ships it inside the package.

The package is pure ctypes, so the native part is the root crate's plain C library (its cdylib,
default features, release), built with setuptools-rust (``Binding.NoBinding``: no Python API
inside) and copied to ``tinybase/_lib/`` under cargo's own file name (``libtinybase.so``,
``libtinybase.dylib``, ``tinybase.dll``), which is where ``tinybase._native`` loads it from.

Where the crate comes from:

- in a checkout (``pip install ./bindings/python``): the repository root, two levels up;
- in an sdist (it has ``PKG-INFO``): the copy under ``rust/`` that the ``sdist`` command below
  vendors: ``Cargo.toml`` with the workspace reduced to this crate (``server/`` is not shipped),
  ``Cargo.lock`` when the checkout has one, ``build.rs``, ``cbindgen.toml``, ``src/``,
  ``include/``.

Cargo builds in ``$CARGO_TARGET_DIR`` when set (share the checkout's ``target/`` to reuse the
dependencies' builds), else in the crate's ``target/``.

The wheel is tagged ``py3-none-<platform>``: the library does not link against Python, so one
wheel serves every Python 3 on that platform.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, Strip, build_rust

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent.parent
VENDORED = "rust"  # the crate's folder inside an sdist
# What a build of the crate needs besides Cargo.toml (which is rewritten) and Cargo.lock.
CRATE_FILES = ["build.rs", "cbindgen.toml", "src", "include"]


def crate_dir() -> Path:
    """The Rust crate to build: the vendored copy in an sdist, else the checkout's root."""
    if (HERE / "PKG-INFO").is_file():
        crate = HERE / VENDORED
        if not (crate / "Cargo.toml").is_file():
            raise SystemExit(f"tinybase: this sdist has no {VENDORED}/Cargo.toml: it was not made by this setup.py")
        return crate
    if not (CHECKOUT / "Cargo.toml").is_file():
        raise SystemExit(f"tinybase: no Cargo.toml at {CHECKOUT}: build from a checkout of the repository or from an sdist")
    return CHECKOUT


def check_crate(manifest: Path, version: str, *, alone: bool = False) -> None:
    """The crate at ``manifest`` must be the version this package loads (``tinybase._native``
    checks the library again at import); with ``alone``, its workspace must hold only it."""
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--manifest-path", str(manifest)],
            check=True, capture_output=True, text=True,
        ).stdout
    except FileNotFoundError:
        raise SystemExit("tinybase: cargo was not found: building tinybase from source needs a Rust toolchain (https://rustup.rs)")
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"tinybase: `cargo metadata` failed on {manifest}:\n{e.stderr}")
    packages = json.loads(out)["packages"]
    if alone and len(packages) != 1:
        raise SystemExit(f"tinybase: {manifest}'s workspace should be the crate alone, it has {[p['name'] for p in packages]}")
    found = next(p["version"] for p in packages if Path(p["manifest_path"]).resolve() == manifest.resolve())
    if found != version:
        raise SystemExit(
            f"tinybase: the crate at {manifest} is version {found} but the Python package is {version}: "
            "make bindings/python/tinybase/_version.py and Cargo.toml agree"
        )


def standalone_manifest(text: str) -> str:
    """The root Cargo.toml with its workspace reduced to the root crate (an sdist ships no server/)."""
    out, n = re.subn(r'(?m)^members\s*=\s*\[[^\]]*\]', 'members = ["."]', text)
    if n != 1:
        raise SystemExit("tinybase: Cargo.toml has no single `members = [...]` line to rewrite for the sdist")
    return out


class BuildRust(build_rust):
    """Installs the cdylib under cargo's file name, not as a CPython extension module name."""

    def run_for_extension(self, ext):
        check_crate(Path(ext.path), self.distribution.get_version())
        super().run_for_extension(ext)

    def install_extension(self, ext, dylib_paths, build_artifact_dir):
        self._artifact_names = {m.module_name: os.path.basename(m.path) for m in dylib_paths}
        super().install_extension(ext, dylib_paths, build_artifact_dir)

    def get_dylib_ext_path(self, ext, target_fname):
        default = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(default), self._artifact_names[target_fname])


class BdistWheel(bdist_wheel):
    """``py3-none-<platform>``: the library is native, but Python only loads it through ctypes."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class Sdist(sdist):
    """Vendors the crate into the sdist (under ``rust/``) so that it builds on its own."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        crate = crate_dir()
        dest = Path(base_dir) / VENDORED
        dest.mkdir()
        for name in CRATE_FILES:
            src = crate / name
            if src.is_dir():
                shutil.copytree(src, dest / name)
            else:
                shutil.copy2(src, dest / name)
        if (crate / "Cargo.lock").is_file():  # the checkout's resolution, for the same dependency builds
            shutil.copy2(crate / "Cargo.lock", dest / "Cargo.lock")
        (dest / "Cargo.toml").write_text(standalone_manifest((crate / "Cargo.toml").read_text()))
        check_crate(dest / "Cargo.toml", self.distribution.get_version(), alone=True)


setup(
    rust_extensions=[
        RustExtension(
            "tinybase._lib.tinybase",  # only the folder counts: BuildRust keeps cargo's file name
            path=str(crate_dir() / "Cargo.toml"),
            binding=Binding.NoBinding,
            debug=False,  # release, editable installs included (the profile keeps line tables...)
            strip=Strip.Debug,  # ...which the shipped copy drops: 60 MB -> a few MB
        )
    ],
    cmdclass={"build_rust": BuildRust, "bdist_wheel": BdistWheel, "sdist": Sdist},
)
