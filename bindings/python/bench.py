#!/usr/bin/env python3
"""W9 of BENCHMARKS.md through the Python binding: W1 and W2.

W1: set all N cells inside one transaction on a fresh MergeableStore (cell i is table t{i%10},
    row r{i//10}, cell c{i%3}, value "v{i}")                                   -> cells/s
W2: then 10,000 single set_cell calls, each its own transaction                -> calls/s

Usage: python3 bindings/python/bench.py [N ...] [--runs R] [--python-clock]
       (default: 10000 100000, 3 runs, the library's system clock)
Prints min / median / max over the runs. Works installed or from the source tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

try:
    import tinybase
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tinybase

W2_CALLS = 10_000
# TinyBase 10.0.1 on node 20, this machine class (BENCHMARKS.md baseline; for context only).
TINYBASE_W1 = (27_000, 37_000)
TINYBASE_W2 = (14_000, 26_000)


def cell(i: int):
    return f"t{i % 10}", f"r{i // 10}", f"c{i % 3}"


def one_round(n: int, python_clock: bool = False):
    data = [(*cell(i), f"v{i}") for i in range(n)]
    t0 = time.perf_counter()
    if python_clock:  # a Python get_now: one Python callback per stamped write
        store = tinybase.MergeableStore("bench", get_now=lambda: 1_700_000_000_000.0)
    else:  # the library's system clock (what an app normally uses)
        store = tinybase.MergeableStore("bench")
    set_cell = store.set_cell
    with store.transaction():
        for t, r, c, v in data:
            set_cell(t, r, c, v)
    w1 = n / (time.perf_counter() - t0)

    calls = [(*cell(i), f"w{i}") for i in range(W2_CALLS)]
    t0 = time.perf_counter()
    for t, r, c, v in calls:
        set_cell(t, r, c, v)
    w2 = W2_CALLS / (time.perf_counter() - t0)
    assert store.get_cell("t9", f"r{(W2_CALLS - 1) // 10}", f"c{(W2_CALLS - 1) % 3}") == f"w{W2_CALLS - 1}"
    store.close()
    return w1, w2


def fmt(v: float) -> str:
    return f"{v / 1000:,.0f}k"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--python-clock", action="store_true", help="give the store a Python get_now callable")
    args = ap.parse_args(argv)
    print(f"tinybase {tinybase.version()} via Python {sys.version.split()[0]} ({tinybase.library_path})")
    print("clock: " + ("Python get_now callable" if args.python_clock else "library system clock"))
    print(f"{'N':>9}  {'W1 cells/s min/median/max':>30}  {'W2 calls/s min/median/max':>30}")
    for n in args.sizes:
        rounds = [one_round(n, args.python_clock) for _ in range(args.runs)]
        w1 = sorted(r[0] for r in rounds)
        w2 = sorted(r[1] for r in rounds)
        print(
            f"{n:>9}  {fmt(w1[0]):>8} / {fmt(statistics.median(w1)):>8} / {fmt(w1[-1]):>8}"
            f"  {fmt(w2[0]):>8} / {fmt(statistics.median(w2)):>8} / {fmt(w2[-1]):>8}"
        )
    print(
        f"TinyBase baseline (BENCHMARKS.md, node 20): W1 {fmt(TINYBASE_W1[0])}-{fmt(TINYBASE_W1[1])} cells/s, "
        f"W2 {fmt(TINYBASE_W2[0])}-{fmt(TINYBASE_W2[1])} calls/s; W9 target: Python W2 >= 10x TinyBase's W2"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
