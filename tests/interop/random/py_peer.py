#!/usr/bin/env python3
"""The Python peer of the randomized interop suite: the Python binding's peer of
bindings/python/tests/sync_peer.py with the real clock, optional anti-entropy and a ``writers``
command that edits the store from several Python threads while it syncs (as random_peer.rs).

    python3 tests/interop/random/py_peer.py --unique-id ID [--timeout SECONDS] [--anti-entropy SECONDS]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, List, Optional

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bindings", "python", "tests"))

from sync_peer import Peer, arg  # noqa: E402  (it finds the tinybase package)

import tinybase  # noqa: E402
from tinybase import SyncStatus  # noqa: E402

MASK = (1 << 64) - 1


def rng_from(seed: int):
    """splitmix64, as random_peer.rs and tb_peer.mjs."""
    state = [seed & MASK]

    def below(n: int) -> int:
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & MASK
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return (z ^ (z >> 31)) % n

    return below


def random_op(store: Any, below: Any, tag: str):
    table, row, cell = f"t{below(3)}", f"r{below(40)}", f"c{below(8)}"
    kind = below(3)
    value: Any = below(100) if kind == 0 else f"{tag}{below(100)}" if kind == 1 else below(2) == 0
    p = below(100)
    if p < 60:
        return lambda: store.set_cell(table, row, cell, value)
    if p < 72:
        return lambda: store.del_cell(table, row, cell)
    if p < 75:
        return lambda: store.del_row(table, row)
    if p < 92:
        value_id = f"v{below(8)}"
        return lambda: store.set_value(value_id, value)
    value_id = f"v{below(8)}"
    return lambda: store.del_value(value_id)


class RandomPeer(Peer):
    def __init__(self, argv: List[str]) -> None:
        super().__init__(argv)
        # The real clock and the suite's options instead of sync_peer's fixed clock.
        self.sync.destroy()
        timeout = float(arg(argv, "--timeout") or 1.0)
        anti_entropy = float(arg(argv, "--anti-entropy") or 0.0)
        self.store = tinybase.MergeableStore(self.unique_id)
        self.runner.stores["P"] = self.store
        self.sync = tinybase.CustomSynchronizer(
            self.store,
            self.send,
            timeout,
            anti_entropy_seconds=anti_entropy,
            on_send=self.touch,
            on_receive=self.touch,
            on_ignored_error=self.ignored,
        )

    def writers(self, cid: Any, spec: dict) -> None:
        num = lambda k, d: int(spec.get(k, d))  # noqa: E731
        seed, threads, count, pause = num("seed", 1), num("threads", 2), num("count", 20), num("maxPauseMs", 5)
        tx, quiet = num("txPercent", 10), num("quietPercent", 0)
        totals: List[List[int]] = []

        def write(t: int) -> None:
            below = rng_from(seed * 1_000_003 + t)
            edits = loading = 0
            for _ in range(count):
                steps = 2 + below(3) if below(100) < tx else 1
                ops = [random_op(self.store, below, f"{self.unique_id}{t}-") for _ in range(steps)]
                with self.store.transaction():
                    for op in ops:
                        op()
                edits += steps
                loading += self.sync.get_status() == SyncStatus.LOADING
                time.sleep((50 + below(200) if below(100) < quiet else below(pause + 1)) / 1000)
            totals.append([edits, loading])

        def run() -> None:
            workers = [threading.Thread(target=write, args=(t,), daemon=True) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            self.answer(cid, {"edits": sum(e for e, _ in totals), "whileLoading": sum(n for _, n in totals)})

        threading.Thread(target=run, daemon=True).start()

    def command(self, msg: dict) -> Optional[int]:
        if msg.get("op") == "writers":
            args = msg.get("args") or [{}]
            self.writers(msg.get("id"), args[0] if isinstance(args[0], dict) else {})
            return None
        return super().command(msg)


def main() -> None:
    peer = RandomPeer(sys.argv[1:])
    status = peer.run()
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
