"""The conformance scripts replayed through the Python binding match TinyBase's results."""

import glob
import json
import os
import subprocess
import sys

import pytest

from replay import first_difference, run_script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PUBLIC = sorted(glob.glob(os.path.join(REPO, "tests", "conformance", "public", "*.json")))
EDGE = sorted(glob.glob(os.path.join(REPO, "tests", "conformance", "edge", "*.json")))
SCRIPTS = PUBLIC + EDGE


def test_scripts_present():
    assert len(PUBLIC) >= 45 and len(EDGE) >= 20


@pytest.mark.parametrize("path", SCRIPTS, ids=[os.path.relpath(p, os.path.join(REPO, "tests", "conformance")) for p in SCRIPTS])
def test_replay_matches_expected(path):
    with open(path, encoding="utf-8") as f:
        script = json.load(f)
    out = run_script(script)
    diff = first_difference("", out, script["expected"])
    assert diff is None, diff


def test_replay_command_line():
    path = PUBLIC[0]
    out = subprocess.run([sys.executable, os.path.join(HERE, "replay.py"), path], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with open(path, encoding="utf-8") as f:
        expected = json.load(f)["expected"]
    assert first_difference("", json.loads(out.stdout), expected) is None


RUST_REPLAY = os.path.join(REPO, "target", "release", "examples", "replay")


@pytest.mark.skipif(not os.path.exists(RUST_REPLAY), reason="Rust replay example not built (cargo build --release --example replay)")
def test_same_output_as_rust_replay():
    failures = []
    for path in SCRIPTS:
        rust = subprocess.run([RUST_REPLAY, path], capture_output=True, text=True, timeout=120)
        py = subprocess.run([sys.executable, os.path.join(HERE, "replay.py"), path], capture_output=True, text=True, timeout=120)
        if rust.returncode != py.returncode:
            failures.append(f"{path}: exit {rust.returncode} vs {py.returncode}")
            continue
        if rust.returncode == 0:
            d = first_difference("", json.loads(py.stdout), json.loads(rust.stdout))
            if d:
                failures.append(f"{path}: {d}")
    assert not failures, "\n".join(failures)
