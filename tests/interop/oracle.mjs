// tinybase-native's oracle runner: replays a conformance script (format in
// shared/conformance/README.md) against the real TinyBase package (10.0.1)
// and prints what it produced.
//
//   node oracle.mjs SCRIPT.json                 -> {"results":[...],"final":{...}} on one line
//   node oracle.mjs --fill SCRIPT.json [...]     -> writes "expected" into each file
//   node oracle.mjs --check SCRIPT.json [...]    -> re-runs each file, compares with its
//                                                   "expected" (exit 1 on any difference)
//
// Everything the README defines is supported: `now` steps (shared clock and
// per-store offsets), plain ops with `args` or `argsFrom`, `transaction` (with
// `rollback`, nested transaction steps allowed), `merge`, every add*Listener.
// Optional step fields: "record": false (don't log the return value),
// "label": "x" (log the return value under this name instead of the op name).
//
// Listener call logging ({"listener": L, "call": [...]}), in the wire encoding:
//   the ids the listener was called with (as many as the listener takes), then
//   - addCellListener / addValueListener:                new value, old value
//   - addHas{Tables,Table,TableCell,Row,Cell,Values,Value}Listener: the boolean
//   - addRowCountListener:                               the row count
//   - addSortedRowIdsListener: args are [tableId, cellId, descending, offset, limit];
//     logged: those five (as passed back by TinyBase) then the sorted row id array
//   - ids/tables/table/row/values listeners (getIdChanges/getCellChange callbacks
//     are not logged):                                   nothing extra
//   - addStartTransactionListener, addWillFinishTransactionListener,
//     addDidFinishTransactionListener:                   [] (an empty call)
// The conventions for addCellListener, addValueListener, addHas*Listener and the
// ids-only kinds are the same as shared/conformance/oracle.mjs; addRowCountListener,
// addHasTablesListener/addHasValuesListener/addHasTableCellListener,
// addSortedRowIdsListener and the transaction listeners other than DidFinish are
// this project's additions.
// An optional "mutator": true on a listener step registers a mutator listener.
//
// `{"store": S, "op": "delListener", "id": L}` removes the listener that the step
// with id L added (TinyBase's delListener; nothing is logged).
//
// Content handed between stores travels in wire form, through the store's
// protected encoded methods (store.__[1..4]): getMergeableContent and
// getTransactionMergeableChanges named inside argsFrom are read encoded, and
// applyMergeableChanges / setMergeableContent steps always apply encoded input.
// `merge` = each store applies the other's encoded content (both read first).
import {readFileSync, writeFileSync} from 'node:fs';
import {pathToFileURL} from 'node:url';
import {createMergeableStore} from 'tinybase';

export const UNDEFINED_MARKER = '\uFFFC';
export const DEFAULT_NOW = 1700000000000;

// JS value -> wire-encoded JSON value (undefined anywhere -> "\uFFFC").
export const toWire = (value) =>
  value === undefined
    ? UNDEFINED_MARKER
    : JSON.parse(
        JSON.stringify(value, (_key, v) => (v === undefined ? UNDEFINED_MARKER : v)),
      );

// wire-encoded JSON value -> JS value ("\uFFFC" at any depth -> undefined).
export const fromWire = (value) => {
  if (value === UNDEFINED_MARKER) return undefined;
  if (Array.isArray(value)) return value.map(fromWire);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value)) out[key] = fromWire(value[key]);
    return out;
  }
  return value;
};

// [number of id arguments, number of extra callback arguments logged]
export const LISTENERS = {
  addHasTablesListener: [0, 1],
  addTablesListener: [0, 0],
  addTableIdsListener: [0, 0],
  addHasTableListener: [1, 1],
  addTableListener: [1, 0],
  addTableCellIdsListener: [1, 0],
  addHasTableCellListener: [2, 1],
  addRowCountListener: [1, 1],
  addRowIdsListener: [1, 0],
  addSortedRowIdsListener: [5, 1],
  addHasRowListener: [2, 1],
  addRowListener: [2, 0],
  addCellIdsListener: [2, 0],
  addHasCellListener: [3, 1],
  addCellListener: [3, 2],
  addHasValuesListener: [0, 1],
  addValuesListener: [0, 0],
  addValueIdsListener: [0, 0],
  addHasValueListener: [1, 1],
  addValueListener: [1, 2],
};
export const TRANSACTION_LISTENERS = new Set([
  'addStartTransactionListener',
  'addWillFinishTransactionListener',
  'addDidFinishTransactionListener',
]);

// store.__ slots of TinyBase's MergeableStore (protected, encoded variants).
const WIRE_SLOT = {
  getMergeableContent: 1,
  getTransactionMergeableChanges: 2,
  setMergeableContent: 3,
  applyMergeableChanges: 4,
};
const ALWAYS_WIRE = new Set(['applyMergeableChanges', 'setMergeableContent']);

export const runScript = (script) => {
  let sharedNow = script.now ?? DEFAULT_NOW;
  const offset = new Map();
  const stores = new Map();
  const listenerIds = new Map();
  const results = [];

  for (const [name, options] of Object.entries(script.stores)) {
    offset.set(name, 0);
    stores.set(
      name,
      createMergeableStore(options.uniqueId, () => sharedNow + offset.get(name)),
    );
  }
  const storeNamed = (name) => {
    const store = stores.get(name);
    if (!store) throw new Error(`unknown store ${JSON.stringify(name)}`);
    return store;
  };

  const call = (storeName, op, args, wire) => {
    const store = storeNamed(storeName);
    if (wire && op in WIRE_SLOT) return store.__[WIRE_SLOT[op]](...args);
    if (typeof store[op] !== 'function') throw new Error(`unknown op ${op}`);
    return store[op](...args);
  };

  const argsOf = (step) =>
    step.argsFrom
      ? step.argsFrom.map((source) =>
          'op' in source
            ? call(source.store, source.op, (source.args ?? []).map(fromWire), true)
            : fromWire(source.value),
        )
      : (step.args ?? []).map(fromWire);

  const addListener = (step) => {
    const store = storeNamed(step.store);
    const op = step.op;
    let listenerId;
    if (TRANSACTION_LISTENERS.has(op)) {
      listenerId = store[op](() => results.push({listener: step.id, call: []}));
    } else {
      const [idCount, extraCount] = LISTENERS[op];
      const args = (step.args ?? []).map(fromWire);
      while (args.length < idCount) args.push(op === 'addSortedRowIdsListener' ? undefined : null);
      listenerId = store[op](
        ...args.slice(0, idCount),
        (_store, ...callArgs) =>
          results.push({
            listener: step.id,
            call: toWire(callArgs.slice(0, idCount + extraCount)),
          }),
        step.mutator === true,
      );
    }
    if (step.id !== undefined) listenerIds.set(step.id, listenerId);
  };

  const runSteps = (steps) => {
    for (const step of steps) {
      if (step.op === undefined) {
        if (!('now' in step)) throw new Error('step without op: ' + JSON.stringify(step));
        if (step.store !== undefined) {
          storeNamed(step.store);
          offset.set(step.store, step.now - sharedNow);
        } else {
          sharedNow = step.now;
        }
        continue;
      }
      const op = step.op;
      const store = storeNamed(step.store);
      if (op === 'transaction') {
        store.transaction(
          () => runSteps(step.steps ?? []),
          () => step.rollback === true,
        );
      } else if (op === 'merge') {
        const other = storeNamed(step.with);
        const mine = store.__[1]();
        const theirs = other.__[1]();
        other.__[4](mine);
        store.__[4](theirs);
      } else if (op in LISTENERS || TRANSACTION_LISTENERS.has(op)) {
        addListener(step);
      } else if (op === 'delListener' && step.id !== undefined && !step.args) {
        if (!listenerIds.has(step.id)) throw new Error(`unknown listener ${step.id}`);
        store.delListener(listenerIds.get(step.id));
      } else {
        const value = call(step.store, op, argsOf(step), ALWAYS_WIRE.has(op));
        if (step.record !== false && value !== store) {
          results.push({step: step.label ?? op, value: toWire(value)});
        }
      }
    }
  };

  runSteps(script.steps ?? []);

  const final = {};
  for (const [name, store] of stores) {
    final[name] = toWire({
      content: store.getContent(),
      mergeableContent: store.getMergeableContent(),
      encodedMergeableContent: store.__[1](),
      hashes: store.getMergeableContentHashes(),
    });
  }
  return {results, final};
};

// JSON-value equality: object key order ignored, array order significant.
export const sameJson = (a, b) => {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') {
    return false;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
  );
};

// Scans JSON text from `i` past one value; returns the index after it.
const skipJsonValue = (text, i) => {
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth === 0) return i + 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) return i + 1;
      if (depth < 0) return i;
    } else if (depth === 0 && (c === ',' || c === '}' || c === ']')) {
      return i;
    } else if (depth === 0 && /[-0-9a-z.+E]/.test(c)) {
      while (i < text.length && /[-0-9a-zA-Z.+]/.test(text[i])) i++;
      return i;
    }
  }
  return i;
};

// Formats "expected" with one result per line and one final store per line.
export const formatExpected = (expected) =>
  '{"results": [' +
  expected.results.map((r) => '\n  ' + JSON.stringify(r)).join(',') +
  (expected.results.length ? '\n ' : '') +
  '],\n "final": {' +
  Object.entries(expected.final)
    .map(([k, v]) => '\n  ' + JSON.stringify(k) + ': ' + JSON.stringify(v))
    .join(',') +
  '\n }}';

// Returns the script's JSON text with its top-level "expected" member replaced
// (or added at the end). Every other member is kept byte for byte, so
// hand-written key orders (e.g. {"b":1,"10":2,"2":3}) and number spellings
// (e.g. 1.0, 1E21, -0.0, 12345678901234567890) survive --fill.
export const fillText = (text, expected) => {
  const members = [];
  let i = text.indexOf('{') + 1;
  for (;;) {
    while (/[\s,]/.test(text[i])) i++;
    if (text[i] !== '"') break;
    const start = i;
    i = skipJsonValue(text, i);
    const key = JSON.parse(text.slice(start, i));
    while (/[\s:]/.test(text[i])) i++;
    i = skipJsonValue(text, i);
    members.push([key, text.slice(start, i)]);
  }
  const kept = members.filter(([key]) => key !== 'expected').map(([, src]) => src);
  kept.push('"expected": ' + formatExpected(expected));
  return '{\n ' + kept.join(',\n ') + '\n}\n';
};

const main = (argv) => {
  const mode = argv[0] === '--fill' ? 'fill' : argv[0] === '--check' ? 'check' : 'print';
  const paths = mode === 'print' ? argv : argv.slice(1);
  if (paths.length === 0) {
    process.stderr.write(
      'usage: node oracle.mjs [--fill|--check] SCRIPT.json [SCRIPT.json ...]\n',
    );
    process.exit(2);
  }
  let failures = 0;
  for (const path of paths) {
    const text = readFileSync(path, 'utf8');
    const script = JSON.parse(text);
    const output = runScript(script);
    if (mode === 'print') {
      process.stdout.write(JSON.stringify(output) + '\n');
    } else if (mode === 'fill') {
      writeFileSync(path, fillText(text, output));
    } else if (!sameJson(output, script.expected)) {
      failures++;
      const n = output.results.length;
      const e = script.expected?.results ?? [];
      const at = [...Array(Math.max(n, e.length)).keys()].find(
        (i) => !sameJson(output.results[i], e[i]),
      );
      process.stdout.write(
        `MISMATCH ${path}` +
          (at === undefined ? ' (final)' : ` (results[${at}])`) +
          '\n',
      );
    }
  }
  if (mode === 'check') {
    process.stdout.write(`${paths.length - failures}/${paths.length} scripts match\n`);
    if (failures) process.exit(1);
  }
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
