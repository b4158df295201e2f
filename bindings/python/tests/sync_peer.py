#!/usr/bin/env python3
"""A synchronizer peer speaking the line protocol of tests/interop/sync (README there), like the
Rust peer examples/sync_peer.rs: a tinybase MergeableStore and CustomSynchronizer of the Python
binding, driven by the hub that also runs TinyBase peers.

    python3 bindings/python/tests/sync_peer.py [...] --unique-id ID [--now MS] [--timeout SECONDS]
                                               [--no-log]

Store commands (TinyBase method names, wire-encoded args) go through replay.py's dispatch.
The library is found as the package finds it (``$TINYBASE_LIBRARY`` or the checkout's
``target/release``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # replay.py
try:
    import tinybase
except ImportError:  # used from the source tree without installing
    sys.path.insert(0, os.path.join(HERE, ".."))
    import tinybase

from replay import NOTHING, Runner, ScriptError  # noqa: E402
from tinybase import ABSENT, SyncMessage, SyncStatus, TinyBaseError  # noqa: E402
from tinybase._jsjson import js_dumps  # noqa: E402

UNDEFINED = "\ufffc"
SETTLE_SECONDS = 2.0  # as the Rust peer's settle()
SHORT_SETTLE_SECONDS = 0.02
ENCODED = {
    "getEncodedMergeableContent": "getMergeableContent",
    "getEncodedTransactionMergeableChanges": "getTransactionMergeableChanges",
    "setEncodedMergeableContent": "setMergeableContent",
    "applyEncodedMergeableChanges": "applyMergeableChanges",
}


def to_wire(v: Any) -> Any:
    if v is ABSENT:
        return UNDEFINED
    if isinstance(v, dict):
        return {k: to_wire(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_wire(x) for x in v]
    return v


def arg(argv: List[str], name: str) -> Optional[str]:
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return None


class Peer:
    def __init__(self, argv: List[str]) -> None:
        self.unique_id = arg(argv, "--unique-id")
        self.log = "--no-log" not in argv
        try:
            self.now = float(arg(argv, "--now") or 1_700_000_000_000)
        except ValueError:
            self.now = 1_700_000_000_000.0
        try:
            timeout = float(arg(argv, "--timeout") or 1.0)
        except ValueError:
            timeout = 1.0
        self.out_lock = threading.Lock()
        self.state = threading.Condition()
        self.diffs = 0  # local-change ContentDiff broadcasts sent so far
        self.auto_saving = False
        self.loads = 0  # startSync / load / startAutoLoad in progress
        self.started = time.monotonic()
        self.last_activity = 0.0
        self.store = tinybase.MergeableStore(self.unique_id, get_now=lambda: self.now)
        self.runner = Runner({"stores": {}})
        self.runner.stores["P"] = self.store
        self.sync = tinybase.CustomSynchronizer(
            self.store,
            self.send,
            timeout,
            on_send=self.touch,
            on_receive=self.touch,
            on_ignored_error=self.ignored,
        )

    # ---- output (any thread) ----

    def emit(self, obj: Any) -> None:
        line = js_dumps(obj) + "\n"
        with self.out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def answer(self, cid: Any, value: Any) -> None:
        self.emit({"type": "result", "id": cid, "value": to_wire(value)})

    def fail(self, cid: Any, message: str) -> None:
        self.emit({"type": "error", "id": cid, "message": message})

    # ---- synchronizer callbacks (worker thread) ----

    def send(self, to: Optional[str], payload: str) -> None:
        parts = json.loads(payload)
        self.emit({"type": "msg", "to": to, "requestId": parts[0], "message": parts[1], "body": parts[2]})
        if to is None and parts[1] == SyncMessage.CONTENT_DIFF:
            with self.state:
                self.diffs += 1
                self.state.notify_all()

    def touch(self, *_: Any) -> None:
        self.last_activity = time.monotonic()

    def ignored(self, error: str) -> None:
        if self.log:
            self.emit({"type": "log", "event": "ignoredError", "error": error})

    # ---- settling: the C API has no is_settled(); see settle() ----

    def snapshot(self) -> Any:
        with self.state:
            return (self.store.get_mergeable_content_hashes(), self.diffs)

    def settle(self, before: Any) -> None:
        """Returns once the synchronizer has handled the local change the last command made
        (TinyBase sends a local transaction's ContentDiff before the call returns). The Rust peer
        waits for is_settled() (nothing queued); the C API only has is_idle() (nothing queued
        and no request waiting for a response), so: when a ContentDiff is expected (auto-saving,
        not loading, content changed) wait for it to be sent or for is_idle(), else only briefly
        for is_idle()."""
        hashes, diffs = before
        with self.state:
            expect = self.auto_saving and self.loads == 0
        if expect:
            expect = self.store.get_mergeable_content_hashes() != hashes and self.sync.get_status() != SyncStatus.LOADING
        end = time.monotonic() + (SETTLE_SECONDS if expect else SHORT_SETTLE_SECONDS)
        while True:
            with self.state:
                if self.diffs > diffs:
                    return
            if self.sync.is_idle() or time.monotonic() >= end:
                return
            with self.state:
                self.state.wait(0.0005)

    # ---- commands ----

    def run_async(self, cid: Any, op: str, initial: Optional[str]) -> None:
        """startSync / load / startAutoLoad: queued now (before the next line is read), answered
        when the initial load has finished. The C call blocks, so it runs on a thread; this
        returns once the command is visibly queued (the worker is busy or loading), or done."""
        fn = {"startSync": self.sync.start_sync, "load": self.sync.load, "startAutoLoad": self.sync.start_auto_load}[op]
        was_idle = self.sync.is_idle()
        done = threading.Event()
        with self.state:
            self.loads += 1

        def body() -> None:
            error = None
            try:
                fn(initial)
            except TinyBaseError as e:
                error = str(e)
            finally:
                with self.state:
                    self.loads -= 1
                    if op == "startSync" and error is None:
                        self.auto_saving = True
                done.set()
            if error is None:
                self.answer(cid, None)
            else:
                self.fail(cid, error)

        threading.Thread(target=body, name=f"peer-{op}", daemon=True).start()
        end = time.monotonic() + 0.5
        while not done.is_set() and time.monotonic() < end:
            try:
                if self.sync.get_status() == SyncStatus.LOADING or (was_idle and not self.sync.is_idle()):
                    return
            except TinyBaseError:
                return
            time.sleep(0.0002)

    def later(self, cid: Any, fn: Any) -> None:
        def body() -> None:
            fn()
            self.answer(cid, None)

        threading.Thread(target=body, daemon=True).start()

    def idle(self, cid: Any, quiet_ms: float, max_ms: float) -> None:
        def wait() -> None:
            begin = time.monotonic()
            while True:
                t = time.monotonic()
                try:
                    idle = self.sync.is_idle()
                except TinyBaseError:
                    idle = True
                if (idle and (t - self.last_activity) * 1000 >= quiet_ms) or (t - begin) * 1000 >= max_ms:
                    return
                time.sleep(0.002)

        self.later(cid, wait)

    def store_op(self, op: str, args: List[Any]) -> Any:
        name = ENCODED.get(op, op)
        v = self.runner.call("P", name, args, op in ENCODED)
        return None if v is NOTHING else v

    def command(self, msg: dict) -> Optional[int]:
        cid = msg.get("id")
        op = msg.get("op") if isinstance(msg.get("op"), str) else ""
        args = msg.get("args") if isinstance(msg.get("args"), list) else []
        first = args[0] if args else None
        sync = self.sync
        try:
            if op in ("startSync", "load", "startAutoLoad"):
                self.run_async(cid, op, None if first is None else js_dumps(first))
                return None
            if op in ("stopSync", "save", "stopAutoLoad", "startAutoSave", "stopAutoSave"):
                getattr(sync, {"stopSync": "stop_sync", "save": "save", "stopAutoLoad": "stop_auto_load", "startAutoSave": "start_auto_save", "stopAutoSave": "stop_auto_save"}[op])()
                with self.state:
                    if op in ("stopSync", "stopAutoSave"):
                        self.auto_saving = False
                    elif op == "startAutoSave":
                        self.auto_saving = True
                self.answer(cid, None)
            elif op == "getStatus":
                self.answer(cid, int(sync.get_status()))
            elif op == "getSynchronizerStats":
                self.answer(cid, sync.get_synchronizer_stats())
            elif op == "now":
                if isinstance(first, (int, float)) and not isinstance(first, bool):
                    self.now = float(first)
                self.answer(cid, self.now)
            elif op == "wait":
                ms = float(first) if isinstance(first, (int, float)) else 0.0
                self.later(cid, lambda: time.sleep(ms / 1000.0))
            elif op == "idle":
                quiet = float(first) if isinstance(first, (int, float)) else 50.0
                mx = float(args[1]) if len(args) > 1 and isinstance(args[1], (int, float)) else 10_000.0
                self.idle(cid, quiet, mx)
            elif op in ("destroy", "exit"):
                sync.destroy()
                with self.state:
                    self.auto_saving = False
                self.answer(cid, None)
                if op == "exit":
                    return 0
            elif op == "transaction":
                steps = msg.get("steps")
                if not isinstance(steps, list):
                    steps = first if isinstance(first, list) else []
                before = self.snapshot()
                results: List[Any] = []
                error = None
                with self.store.transaction():
                    for step in steps:
                        s_op = step.get("op") if isinstance(step, dict) else None
                        s_args = step.get("args") if isinstance(step, dict) and isinstance(step.get("args"), list) else []
                        try:
                            results.append(self.store_op(s_op if isinstance(s_op, str) else "", s_args))
                        except (ScriptError, TinyBaseError) as e:
                            error = str(e)
                            break
                self.settle(before)
                if error is None:
                    self.answer(cid, results)
                else:
                    self.fail(cid, error)
            else:
                before = self.snapshot()
                try:
                    value = self.store_op(op, args)
                finally:
                    self.settle(before)
                self.answer(cid, value)
        except (ScriptError, TinyBaseError, ValueError, TypeError, KeyError, IndexError) as e:
            self.fail(cid, str(e) or type(e).__name__)
        return None

    def run(self) -> int:
        self.emit({"type": "ready", "uniqueId": self.unique_id, "implementation": "tinybase-python"})
        stdin = sys.stdin.buffer
        while True:
            raw = stdin.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "surrogatepass").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.emit({"type": "log", "event": "invalidLine"})
                continue
            kind = msg.get("type")
            if kind == "msg":
                payload = js_dumps([msg.get("requestId"), msg.get("message"), msg.get("body")])
                frm = msg.get("from") if isinstance(msg.get("from"), str) else ""
                try:
                    self.sync.receive(frm, payload)
                except TinyBaseError as e:
                    print(f"receive failed: {e}", file=sys.stderr)
            elif kind == "cmd":
                status = self.command(msg)
                if status is not None:
                    return status
            else:
                self.emit({"type": "log", "event": "invalidLine"})
        self.sync.destroy()
        return 0


def main() -> None:
    peer = Peer(sys.argv[1:])
    status = peer.run()
    sys.stdout.flush()
    os._exit(status)  # threads still waiting (wait/idle/startSync answers) do not hold the exit


if __name__ == "__main__":
    main()
