#!/usr/bin/env python3
"""Replays a conformance script through the Python binding and prints
``{"results": [...], "final": {...}}`` as JSON, exactly as the Rust replay example does
(``cargo run --release --example replay -- SCRIPT.json``; logic ported from
tests/support/script.rs).

Usage: python3 bindings/python/tests/replay.py SCRIPT.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

try:
    import tinybase
except ImportError:  # used from the source tree without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import tinybase

from tinybase import ABSENT, ListenerKind, MergeableStore, TinyBaseError
from tinybase._jsjson import js_dumps

UNDEFINED = "\ufffc"
NOTHING = object()  # an op whose result is not recorded (it returned the store)


class ScriptError(Exception):
    pass


def undefined_if_absent(v: Any) -> Any:
    return UNDEFINED if v is ABSENT else v


LISTENER_OPS = {
    "addHasTablesListener": ListenerKind.HAS_TABLES,
    "addTablesListener": ListenerKind.TABLES,
    "addTableIdsListener": ListenerKind.TABLE_IDS,
    "addHasTableListener": ListenerKind.HAS_TABLE,
    "addTableListener": ListenerKind.TABLE,
    "addTableCellIdsListener": ListenerKind.TABLE_CELL_IDS,
    "addHasTableCellListener": ListenerKind.HAS_TABLE_CELL,
    "addRowCountListener": ListenerKind.ROW_COUNT,
    "addRowIdsListener": ListenerKind.ROW_IDS,
    "addHasRowListener": ListenerKind.HAS_ROW,
    "addRowListener": ListenerKind.ROW,
    "addCellIdsListener": ListenerKind.CELL_IDS,
    "addHasCellListener": ListenerKind.HAS_CELL,
    "addCellListener": ListenerKind.CELL,
    "addHasValuesListener": ListenerKind.HAS_VALUES,
    "addValuesListener": ListenerKind.VALUES,
    "addValueIdsListener": ListenerKind.VALUE_IDS,
    "addHasValueListener": ListenerKind.HAS_VALUE,
    "addValueListener": ListenerKind.VALUE,
    "addStartTransactionListener": ListenerKind.START_TRANSACTION,
    "addWillFinishTransactionListener": ListenerKind.WILL_FINISH_TRANSACTION,
    "addDidFinishTransactionListener": ListenerKind.DID_FINISH_TRANSACTION,
}

ID_COUNT = {
    ListenerKind.HAS_TABLE: 1,
    ListenerKind.TABLE: 1,
    ListenerKind.TABLE_CELL_IDS: 1,
    ListenerKind.ROW_COUNT: 1,
    ListenerKind.ROW_IDS: 1,
    ListenerKind.HAS_TABLE_CELL: 2,
    ListenerKind.HAS_ROW: 2,
    ListenerKind.ROW: 2,
    ListenerKind.CELL_IDS: 2,
    ListenerKind.HAS_CELL: 3,
    ListenerKind.CELL: 3,
    ListenerKind.HAS_VALUE: 1,
    ListenerKind.VALUE: 1,
}

TRANSACTION_KINDS = (
    ListenerKind.START_TRANSACTION,
    ListenerKind.WILL_FINISH_TRANSACTION,
    ListenerKind.DID_FINISH_TRANSACTION,
)


def s(args: List[Any], i: int) -> str:
    """An id argument: strings as they are, anything else as its JSON text, missing as ""."""
    if i >= len(args):
        return ""
    a = args[i]
    return a if isinstance(a, str) else js_dumps(a)


def arg_json(args: List[Any], i: int) -> str:
    return js_dumps(args[i] if i < len(args) else None)


def key_of(label: Any) -> str:
    return label if isinstance(label, str) else js_dumps(label)


class Runner:
    def __init__(self, script: Dict[str, Any]) -> None:
        self.now = float(script.get("now", 1_700_000_000_000))
        self.offsets: Dict[str, float] = {}
        self.stores: Dict[str, MergeableStore] = {}
        self.listener_ids: Dict[str, Tuple[str, int]] = {}
        self.results: List[Any] = []
        stores = script.get("stores")
        if not isinstance(stores, dict):
            raise ScriptError("script without stores")
        for name, options in stores.items():
            self.offsets[name] = 0.0
            uid = options.get("uniqueId") if isinstance(options, dict) else None
            self.stores[name] = MergeableStore(uid if isinstance(uid, str) else None, get_now=self._clock(name))

    def _clock(self, name: str):
        return lambda: self.now + self.offsets[name]

    def store(self, name: str) -> MergeableStore:
        try:
            return self.stores[name]
        except KeyError:
            raise ScriptError(f"unknown store {name}") from None

    def close(self) -> None:
        for st in self.stores.values():
            st.close()

    def call(self, name: str, op: str, args: List[Any], wire: bool) -> Any:
        st = self.store(name)

        def ignore(fn, *a) -> Any:
            try:
                fn(*a)
            except TinyBaseError:
                pass
            return NOTHING

        if op == "getTables":
            return st.get_tables()
        if op == "getValues":
            return st.get_values()
        if op == "getContent":
            return list(st.get_content())
        if op == "getTableIds":
            return st.get_table_ids()
        if op == "getTable":
            return st.get_table(s(args, 0))
        if op == "getTableCellIds":
            return st.get_table_cell_ids(s(args, 0))
        if op == "getRowCount":
            return st.get_row_count(s(args, 0))
        if op == "getRowIds":
            return st.get_row_ids(s(args, 0))
        if op == "getRow":
            return st.get_row(s(args, 0), s(args, 1))
        if op == "getCellIds":
            return st.get_cell_ids(s(args, 0), s(args, 1))
        if op == "getCell":
            return undefined_if_absent(st.get_cell(s(args, 0), s(args, 1), s(args, 2)))
        if op == "getValueIds":
            return st.get_value_ids()
        if op == "getValue":
            return undefined_if_absent(st.get_value(s(args, 0)))
        if op == "hasTables":
            return st.has_tables()
        if op == "hasTable":
            return st.has_table(s(args, 0))
        if op == "hasTableCell":
            return st.has_table_cell(s(args, 0), s(args, 1))
        if op == "hasRow":
            return st.has_row(s(args, 0), s(args, 1))
        if op == "hasCell":
            return st.has_cell(s(args, 0), s(args, 1), s(args, 2))
        if op == "hasValues":
            return st.has_values()
        if op == "hasValue":
            return st.has_value(s(args, 0))
        if op == "getJson":
            return st.get_json()
        if op == "getTablesJson":
            return st.get_tables_json()
        if op == "getValuesJson":
            return st.get_values_json()
        if op == "getTransactionChanges":
            return json.loads(st.get_transaction_changes_json())
        if op == "getMergeableContent":
            return json.loads(st.get_mergeable_content_json(decoded=not wire))
        if op == "getTransactionMergeableChanges":
            with_hashes = args[0] if args and isinstance(args[0], bool) else False
            return json.loads(st.get_transaction_mergeable_changes_json(with_hashes, decoded=not wire))
        if op == "getMergeableContentHashes":
            return list(st.get_mergeable_content_hashes())
        if op == "getMergeableTableHashes":
            return st.get_mergeable_table_hashes()
        if op == "getMergeableValueHashes":
            return st.get_mergeable_value_hashes()
        diff = {
            "getMergeableTableDiff": st.get_mergeable_table_diff_json,
            "getMergeableRowHashes": st.get_mergeable_row_hashes_json,
            "getMergeableRowDiff": st.get_mergeable_row_diff_json,
            "getMergeableCellHashes": st.get_mergeable_cell_hashes_json,
            "getMergeableCellDiff": st.get_mergeable_cell_diff_json,
            "getMergeableValueDiff": st.get_mergeable_value_diff_json,
        }.get(op)
        if diff is not None:
            try:
                return json.loads(diff(arg_json(args, 0)))
            except TinyBaseError as e:
                raise ScriptError(str(e)) from None
        if op == "setTables":
            return ignore(st.set_tables, args[0])
        if op == "setTable":
            return ignore(st.set_table_json, s(args, 0), arg_json(args, 1))
        if op == "setRow":
            return ignore(st.set_row_json, s(args, 0), s(args, 1), arg_json(args, 2))
        if op == "setPartialRow":
            return ignore(st.set_partial_row_json, s(args, 0), s(args, 1), arg_json(args, 2))
        if op == "addRow":
            try:
                return st.add_row_json(s(args, 0), arg_json(args, 1), not (len(args) > 2 and args[2] is False))
            except TinyBaseError:
                return UNDEFINED
        if op == "setCell":
            return ignore(st.set_cell_json, s(args, 0), s(args, 1), s(args, 2), arg_json(args, 3))
        if op == "setValues":
            return ignore(st.set_values, args[0])
        if op == "setPartialValues":
            return ignore(st.set_partial_values_json, arg_json(args, 0))
        if op == "setValue":
            return ignore(st.set_value_json, s(args, 0), arg_json(args, 1))
        if op == "setContent":
            return ignore(st.set_content_json, arg_json(args, 0))
        if op == "applyChanges":
            return ignore(st.apply_changes_json, arg_json(args, 0))
        if op == "delTables":
            return ignore(st.del_tables)
        if op == "delTable":
            return ignore(st.del_table, s(args, 0))
        if op == "delRow":
            return ignore(st.del_row, s(args, 0), s(args, 1))
        if op == "delCell":
            return ignore(st.del_cell, s(args, 0), s(args, 1), s(args, 2))
        if op == "delValues":
            return ignore(st.del_values)
        if op == "delValue":
            return ignore(st.del_value, s(args, 0))
        if op == "setMergeableContent":
            return ignore(st.set_mergeable_content_json, arg_json(args, 0))
        if op == "applyMergeableChanges":
            return ignore(st.apply_mergeable_changes_json, arg_json(args, 0))
        if op == "setDefaultContent":
            return ignore(st.set_default_content_json, arg_json(args, 0))
        raise ScriptError(f"unknown op {op}")

    def args_of(self, step: Dict[str, Any]) -> List[Any]:
        sources = step.get("argsFrom")
        if isinstance(sources, list):
            out = []
            for src in sources:
                if not isinstance(src, dict):
                    raise ScriptError("bad argsFrom")
                op = src.get("op")
                if isinstance(op, str):
                    store = src.get("store")
                    if not isinstance(store, str):
                        raise ScriptError("argsFrom without store")
                    args = src.get("args") if isinstance(src.get("args"), list) else []
                    v = self.call(store, op, args, True)
                    out.append(None if v is NOTHING else v)
                else:
                    out.append(src.get("value", UNDEFINED))
            return out
        args = step.get("args")
        return args if isinstance(args, list) else []

    def add_listener(self, name: str, op: str, step: Dict[str, Any]) -> None:
        kind = LISTENER_OPS[op]
        args = step.get("args") if isinstance(step.get("args"), list) else []
        ids: List[Optional[str]] = []
        for i in range(ID_COUNT.get(kind, 0)):
            a = args[i] if i < len(args) else None
            ids.append(None if a is None else a if isinstance(a, str) else js_dumps(a))
        label = step.get("id")
        results = self.results

        def on_call(_store: Any, *call_args: Any) -> None:
            call = [] if kind in TRANSACTION_KINDS else [undefined_if_absent(a) for a in call_args]
            results.append({"listener": label, "call": call})

        try:
            listener = self.store(name).add_listener(kind, tuple(ids), on_call)
        except TinyBaseError as e:
            raise ScriptError(str(e)) from None
        if "id" in step:
            self.listener_ids[key_of(label)] = (name, listener.id)

    def run_steps(self, steps: List[Any]) -> None:
        for step in steps:
            if not isinstance(step, dict):
                raise ScriptError("step must be an object")
            op = step.get("op")
            store = step.get("store") if isinstance(step.get("store"), str) else None
            if not isinstance(op, str):
                now = step.get("now")
                if isinstance(now, bool) or not isinstance(now, (int, float)):
                    raise ScriptError("step without op or now")
                if store is not None:
                    if store not in self.offsets:
                        raise ScriptError("unknown store")
                    self.offsets[store] = float(now) - self.now
                else:
                    self.now = float(now)
                continue
            if store is None:
                raise ScriptError("step without store")
            name = store
            if op == "transaction":
                inner = step.get("steps") if isinstance(step.get("steps"), list) else []
                rollback = step.get("rollback") is True
                st = self.store(name)
                st.start_transaction()
                try:
                    self.run_steps(inner)
                finally:
                    st.finish_transaction(rollback)
            elif op == "merge":
                other = step.get("with")
                if not isinstance(other, str):
                    raise ScriptError("merge without with")
                a, b = self.store(name), self.store(other)
                mine = a.get_mergeable_content_json()
                theirs = b.get_mergeable_content_json()
                for target, text in ((b, mine), (a, theirs)):
                    try:
                        target.apply_mergeable_changes_json(text)
                    except TinyBaseError:
                        pass
            elif op == "delListener" and "args" not in step:
                if "id" not in step:
                    raise ScriptError("delListener without id")
                key = key_of(step["id"])
                if key not in self.listener_ids:
                    raise ScriptError("unknown listener")
                owner, lid = self.listener_ids[key]
                self.store(owner).del_listener(lid)
            elif op in LISTENER_OPS:
                self.add_listener(name, op, step)
            else:
                args = self.args_of(step)
                value = self.call(name, op, args, False)
                if value is not NOTHING and step.get("record") is not False:
                    self.results.append({"step": step.get("label", op), "value": value})


def run_script(script: Dict[str, Any]) -> Dict[str, Any]:
    """Replays a script; returns ``{"results": [...], "final": {...}}``."""
    runner = Runner(script)
    try:
        steps = script.get("steps") if isinstance(script.get("steps"), list) else []
        runner.run_steps(steps)
        final = {}
        for name, st in runner.stores.items():
            tables, values = st.get_content()
            final[name] = {
                "content": [tables, values],
                "mergeableContent": st.get_mergeable_content(),
                "encodedMergeableContent": json.loads(st.get_mergeable_content_json()),
                "hashes": list(st.get_mergeable_content_hashes()),
            }
        return {"results": list(runner.results), "final": final}
    finally:
        runner.close()


def same_json(a: Any, b: Any) -> bool:
    """JSON equality as the conformance README defines it: object key order ignored, array
    order significant, numbers compared as doubles (and never equal to booleans)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and same_json(v, b[k]) for k, v in a.items())
    return type(a) is type(b) and a == b


def first_difference(path: str, a: Any, b: Any) -> Optional[str]:
    """A short description of the first difference between two JSON values (None if same)."""
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(f"{path}[{i}]", x, y)
            if d:
                return d
        return None if len(a) == len(b) else f"{path}: length {len(a)} vs {len(b)}"
    if isinstance(a, dict) and isinstance(b, dict):
        for k, v in a.items():
            if k not in b:
                return f"{path}.{k}: only in ours"
            d = first_difference(f"{path}.{k}", v, b[k])
            if d:
                return d
        for k in b:
            if k not in a:
                return f"{path}.{k}: only in expected"
        return None
    if same_json(a, b):
        return None
    return f"{path}: ours {js_dumps(a)} vs expected {js_dumps(b)}"


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print("usage: replay.py SCRIPT.json", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            script = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return 2
    try:
        out = run_script(script)
    except (ScriptError, TinyBaseError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(js_dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
