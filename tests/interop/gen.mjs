// tinybase-native's seeded random conformance-script generator.
//
//   node gen.mjs OUT_DIR FIRST_SEED COUNT [STEPS]
//
// writes OUT_DIR/seed-<n>.json for n = FIRST_SEED .. FIRST_SEED+COUNT-1, each
// with "expected" filled in by running it through oracle.mjs (the real TinyBase).
// STEPS (default 60) is the number of top-level steps.
//
// Scripts are written as JSON *text* by this file's own serializer so that
// objects keep the (JS-unsorted) key order they were generated in, e.g.
// {"b":1,"10":2,"2":3}, and some numbers keep unusual spellings (1.0, 1E21,
// -0.0, 12345678901234567890). A replay tool must apply JavaScript's rules to
// them (integer-like keys first, float64 parsing), exactly as TinyBase sees them
// after JSON.parse.
import {mkdirSync, writeFileSync} from 'node:fs';
import {pathToFileURL} from 'node:url';
import {fillText, runScript} from './oracle.mjs';

// ---------------------------------------------------------------- randomness
// sfc32 seeded through splitmix32: small, fast, fully deterministic.
const makeRandom = (seed) => {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix(), b = splitmix(), c = splitmix(), d = splitmix();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
};

// ------------------------------------------------------- ordered JSON writer
// An object whose members are written in exactly this order.
class Obj {
  constructor(entries = []) {
    this.entries = [];
    for (const [k, v] of entries) this.set(k, v);
  }
  set(key, value) {
    const at = this.entries.findIndex(([k]) => k === key);
    if (at >= 0) this.entries[at][1] = value;
    else this.entries.push([key, value]);
    return this;
  }
}
// A number written with this exact spelling.
class Num {
  constructor(text) {
    this.text = text;
  }
}
const o = (entries) => new Obj(entries);

const write = (v) => {
  if (v === undefined) return '"\uFFFC"';
  if (v instanceof Num) return v.text;
  if (v instanceof Obj) {
    return '{' + v.entries.map(([k, x]) => JSON.stringify(k) + ':' + write(x)).join(',') + '}';
  }
  if (Array.isArray(v)) return '[' + v.map(write).join(',') + ']';
  if (v !== null && typeof v === 'object') {
    return write(new Obj(Object.entries(v)));
  }
  return JSON.stringify(v);
};

// ------------------------------------------------------------------ the HLC
const ALPHABET = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const digits = (n, count) => {
  let out = '';
  for (let i = count - 1; i >= 0; i--) out += ALPHABET[Math.floor(n / 64 ** i) % 64];
  return out;
};
const fnv1a = (text) => {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
};
export const clientIdOf = (uniqueId) => {
  const h = fnv1a(uniqueId);
  return [24, 18, 12, 6, 0].map((shift) => ALPHABET[(h >>> shift) & 63]).join('');
};
export const hlc = (time, counter, client) => digits(time, 7) + digits(counter, 4) + client;

// ------------------------------------------------------------------- pools
const TABLES = ['pets', 't', '0', '2', '10', '01', '', 'é表', '🐶'];
const ROWS = ['fido', 'felix', '0', '1', '2', '3', '10', '01', '', 'r🐶', 'ü'];
const CELLS = ['species', 'legs', 'n', '0', '2', '10', '01', '', 'x y', '🐱'];
const VALUES = ['open', 'v', '0', '7', '10', '01', '', 'ünï', '🦄'];
const OBJECT_KEYS = ['b', 'a', '10', '2', '01', '', '1', 'z y', 'é', '4294967295', '4294967294', '-1'];
const STRINGS = [
  'dog', 'cat', '', 'with "quotes" and \\ backslash', 'line\nbreak\r\n', 'tab\there',
  '\u0000nul', '\u0001\u001f ctl', 'del\u007f', 'ls\u2028ps\u2029', 'ümlaut', 'é表', '🐶🐱',
  '👨‍👩‍👧', 'a\uFFFC', 'x\uFFFDy', '/slash/', '<>&\'', '0', '1e21', 'null', 'true',
];
const NUMBERS = [
  0, 1, -1, 4, 7, 100, 0.5, -2.5, 0.1 + 0.2, 1e21, 1e20, 1e-7, 1e-6, -2.5e-8, 123456789012,
  2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1.7976931348623157e308, 5e-324,
  2.2250738585072014e-308, 1e300, -1e-300, 123e-20, 1 / 3, 4.35, 0.000001,
];
// Number spellings that JSON.stringify would never produce (values all finite).
const NUMBER_TEXTS = ['1.0', '1E21', '1e+21', '-0.0', '-0', '12345678901234567890', '1.5E-7', '100e-2', '0.0000001'];

export const generate = (seed, stepCount = 60) => {
  const r = makeRandom(seed);
  const int = (n) => Math.floor(r() * n);
  const pick = (list) => list[int(list.length)];
  const chance = (p) => r() < p;
  const pickSome = (list, n) => {
    const copy = [...list];
    const out = [];
    while (out.length < n && copy.length) out.push(copy.splice(int(copy.length), 1)[0]);
    return out;
  };

  const number = () => (chance(0.1) ? new Num(pick(NUMBER_TEXTS)) : pick(NUMBERS));
  const jsonish = (depth) => {
    const k = r();
    if (depth > 0 && k < 0.15) return o(pickSome(OBJECT_KEYS, 1 + int(4)).map((key) => [key, jsonish(depth - 1)]));
    if (depth > 0 && k < 0.25) return [...Array(int(4))].map(() => jsonish(depth - 1));
    return k < 0.5 ? pick(STRINGS) : k < 0.8 ? number() : k < 0.9 ? chance(0.5) : null;
  };
  const objectCell = () => o(pickSome(OBJECT_KEYS, 1 + int(5)).map((key) => [key, jsonish(2)]));
  const arrayCell = () => [...Array(int(4))].map(() => jsonish(2));
  const leaf = () => {
    const k = r();
    return k < 0.38
      ? pick(STRINGS)
      : k < 0.72
        ? number()
        : k < 0.82
          ? chance(0.5)
          : k < 0.87
            ? null
            : k < 0.94
              ? objectCell()
              : arrayCell();
  };
  const row = () => o(pickSome(CELLS, 1 + int(3)).map((c) => [c, leaf()]));
  const table = () => o(pickSome(ROWS, 1 + int(3)).map((id) => [id, row()]));
  const tables = () => o(pickSome(TABLES, 1 + int(2)).map((id) => [id, table()]));
  const values = () => o(pickSome(VALUES, 1 + int(3)).map((id) => [id, leaf()]));

  // ---- stores and clocks
  const storeNames = chance(0.5) ? ['a', 'b'] : ['a', 'b', 'c'];
  const stores = {};
  const sameIds = chance(0.1);
  for (const name of storeNames) {
    stores[name] = {
      uniqueId: sameIds && name !== 'c' ? 'twin' + seed : chance(0.1) ? name + '🐶' + seed : name + seed,
    };
  }
  let sharedNow = 1700000000000 + int(1e9);
  const offsets = Object.fromEntries(storeNames.map((n) => [n, 0]));
  const storeNow = (name) => sharedNow + offsets[name];
  const script = {description: `tinybase-native random script, seed ${seed}`, now: sharedNow, stores, steps: []};

  const clockStep = () => {
    const name = pick(storeNames);
    const k = r();
    if (k < 0.55) {
      sharedNow += chance(0.3) ? 0 : 1 + int(5000);
      return {now: sharedNow};
    }
    if (k < 0.7) {
      sharedNow -= 1 + int(3000);
      return {now: sharedNow};
    }
    const delta =
      k < 0.8 ? 0 : k < 0.9 ? int(200000) - 100000 : k < 0.95 ? 300001 + int(600000) : -3600000;
    offsets[name] = delta;
    return {now: sharedNow + delta, store: name};
  };

  // ---- listeners
  const idOr = (list) => (chance(0.55) ? null : pick(list));
  const listenerSpec = () => {
    const kind = int(20);
    switch (kind) {
      case 0: return ['addHasTablesListener', []];
      case 1: return ['addTablesListener', []];
      case 2: return ['addTableIdsListener', []];
      case 3: return ['addHasTableListener', [idOr(TABLES)]];
      case 4: return ['addTableListener', [idOr(TABLES)]];
      case 5: return ['addTableCellIdsListener', [idOr(TABLES)]];
      case 6: return ['addRowCountListener', [idOr(TABLES)]];
      case 7: return ['addRowIdsListener', [idOr(TABLES)]];
      case 8: return ['addHasRowListener', [idOr(TABLES), idOr(ROWS)]];
      case 9: return ['addRowListener', [idOr(TABLES), idOr(ROWS)]];
      case 10: return ['addCellIdsListener', [idOr(TABLES), idOr(ROWS)]];
      case 11: return ['addHasCellListener', [idOr(TABLES), idOr(ROWS), idOr(CELLS)]];
      case 12: return ['addCellListener', [idOr(TABLES), idOr(ROWS), idOr(CELLS)]];
      case 13: return ['addHasValuesListener', []];
      case 14: return ['addValuesListener', []];
      case 15: return ['addValueIdsListener', []];
      case 16: return ['addHasValueListener', [idOr(VALUES)]];
      case 17: return ['addValueListener', [idOr(VALUES)]];
      case 18: return ['addHasTableCellListener', [idOr(TABLES), idOr(CELLS)]];
      default: return [pick(['addDidFinishTransactionListener', 'addStartTransactionListener', 'addWillFinishTransactionListener']), []];
    }
  };
  const liveListeners = [];
  let listenerCount = 0;
  const addListenerStep = (store) => {
    const [op, args] = listenerSpec();
    const id = `L${listenerCount++}:${store}:${op.slice(3, -8)}:${JSON.stringify(args)}`;
    liveListeners.push([store, id]);
    return {store, op, args, id};
  };

  // ---- local mutations
  const mutation = (store) => {
    switch (int(22)) {
      case 0: case 1: case 2: case 3:
        return {store, op: 'setCell', args: [pick(TABLES), pick(ROWS), pick(CELLS), leaf()]};
      case 4:
        return {store, op: 'delCell', args: [pick(TABLES), pick(ROWS), pick(CELLS)]};
      case 5:
        return {store, op: 'setRow', args: [pick(TABLES), pick(ROWS), row()]};
      case 6:
        return {store, op: 'setPartialRow', args: [pick(TABLES), pick(ROWS), row()]};
      case 7:
        return {store, op: 'delRow', args: [pick(TABLES), pick(ROWS)]};
      case 8:
        return {store, op: 'setTable', args: [pick(TABLES), table()]};
      case 9:
        return {store, op: 'delTable', args: [pick(TABLES)]};
      case 10:
        return {store, op: 'setTables', args: [tables()]};
      case 11:
        return {store, op: 'delTables', args: []};
      case 12: case 13:
        return {store, op: 'setValue', args: [pick(VALUES), leaf()]};
      case 14:
        return {store, op: 'delValue', args: [pick(VALUES)]};
      case 15:
        return {store, op: 'setValues', args: [values()]};
      case 16:
        return {store, op: 'setPartialValues', args: [values()]};
      case 17:
        return {store, op: 'delValues', args: []};
      case 18: case 19:
        return {store, op: 'addRow', args: chance(0.8) ? [pick(TABLES), row()] : [pick(TABLES), row(), chance(0.5)]};
      case 20: {
        const changedTables = o(pickSome(TABLES, int(3)).map((t) => [
          t,
          chance(0.1)
            ? undefined
            : o(pickSome(ROWS, 1 + int(2)).map((rr) => [
                rr,
                chance(0.1) ? undefined : o(pickSome(CELLS, 1 + int(2)).map((c) => [c, chance(0.7) ? leaf() : undefined])),
              ])),
        ]));
        const changedValues = o(pickSome(VALUES, int(3)).map((v) => [v, chance(0.7) ? leaf() : undefined]));
        return {store, op: 'applyChanges', args: [[changedTables, changedValues, 1]]};
      }
      default:
        return {store, op: 'setContent', args: [[tables(), values()]]};
    }
  };

  // ---- getters
  const getter = (store) => {
    const q = pick([
      'getTables', 'getTable', 'getTableIds', 'getRowIds', 'getRowCount', 'getTableCellIds',
      'getCellIds', 'getRow', 'getCell', 'getValue', 'getValues', 'getValueIds', 'hasTables',
      'hasTable', 'hasRow', 'hasCell', 'hasValue', 'hasValues', 'hasTableCell', 'getContent',
      'getMergeableContent', 'getTransactionChanges', 'getTransactionMergeableChanges',
    ]);
    const args = {
      getTable: [pick(TABLES)],
      getRowIds: [pick(TABLES)],
      getRowCount: [pick(TABLES)],
      getTableCellIds: [pick(TABLES)],
      hasTable: [pick(TABLES)],
      getCellIds: [pick(TABLES), pick(ROWS)],
      getRow: [pick(TABLES), pick(ROWS)],
      hasRow: [pick(TABLES), pick(ROWS)],
      getCell: [pick(TABLES), pick(ROWS), pick(CELLS)],
      hasCell: [pick(TABLES), pick(ROWS), pick(CELLS)],
      hasTableCell: [pick(TABLES), pick(CELLS)],
      getValue: [pick(VALUES)],
      hasValue: [pick(VALUES)],
      getTransactionMergeableChanges: chance(0.5) ? [] : [chance(0.5)],
    }[q] ?? [];
    return {store, op: q, args};
  };

  // ---- diff methods
  const zeroTableHashes = () => o(pickSome(TABLES, 1 + int(TABLES.length)).map((t) => [t, chance(0.8) ? 0 : int(2 ** 32)]));
  const zeroRowHashes = () =>
    o(pickSome(TABLES, 1 + int(TABLES.length)).map((t) => [t, o(pickSome(ROWS, 1 + int(ROWS.length)).map((rr) => [rr, chance(0.8) ? 0 : int(2 ** 32)]))]));
  const zeroCellHashes = () =>
    o(pickSome(TABLES, 1 + int(4)).map((t) => [t, o(pickSome(ROWS, 1 + int(5)).map((rr) => [rr, o(pickSome(CELLS, 1 + int(4)).map((c) => [c, chance(0.8) ? 0 : int(2 ** 32)]))]))]));
  const diffStep = (store, other) => {
    switch (int(13)) {
      case 0: return {store, op: 'getMergeableContentHashes'};
      case 1: return {store, op: 'getMergeableTableHashes'};
      case 2: return {store, op: 'getMergeableTableDiff', argsFrom: [{store: other, op: 'getMergeableTableHashes'}]};
      case 3: return {store, op: 'getMergeableRowHashes', argsFrom: [{store: other, op: 'getMergeableTableHashes'}]};
      case 4: return {store, op: 'getMergeableRowHashes', args: [zeroTableHashes()]};
      case 5: return {store, op: 'getMergeableRowDiff', argsFrom: [{store: other, op: 'getMergeableRowHashes', args: [zeroTableHashes()]}]};
      case 6: return {store, op: 'getMergeableRowDiff', args: [zeroRowHashes()]};
      case 7: return {store, op: 'getMergeableCellHashes', argsFrom: [{store: other, op: 'getMergeableRowHashes', args: [zeroTableHashes()]}]};
      case 8: return {store, op: 'getMergeableCellDiff', argsFrom: [{store: other, op: 'getMergeableCellHashes', args: [zeroRowHashes()]}]};
      case 9: return {store, op: 'getMergeableCellDiff', args: [zeroCellHashes()]};
      case 10: return {store, op: 'getMergeableValueHashes'};
      case 11: return {store, op: 'getMergeableValueDiff', argsFrom: [{store: other, op: 'getMergeableValueHashes'}]};
      default: return {store, op: 'getMergeableValueDiff', args: [o(pickSome(VALUES, 1 + int(4)).map((v) => [v, chance(0.7) ? 0 : int(2 ** 32)]))]};
    }
  };

  // ---- hand-made wire-form mergeable changes / content
  const clients = () => [...storeNames.map((n) => clientIdOf(stores[n].uniqueId)), 'zzzzz', '-----', 'A_b9z'];
  const stampHlc = (receiver) => {
    const k = r();
    if (k < 0.08) return '';
    const delta =
      k < 0.85 ? int(120000) - 90000 : k < 0.89 ? 300000 : k < 0.92 ? 300001 : k < 0.94 ? 900000 : -86400000;
    return hlc(storeNow(receiver) + delta, pick([0, 0, 1, 2, 7, int(1000), 16777215]), pick(clients()));
  };
  const wireLeaf = () => {
    const k = r();
    if (k < 0.15) return undefined; // tombstone, "\uFFFC"
    if (k < 0.25) return '\uFFFD' + write(chance(0.6) ? objectCell() : arrayCell());
    const v = leaf();
    return v instanceof Obj || Array.isArray(v) ? '\uFFFD' + write(v) : v;
  };
  const containerHlc = (receiver) => (chance(0.9) ? null : chance(0.3) ? '' : stampHlc(receiver));
  const stamp = (thing, hlcText, withHash) =>
    withHash ? [thing, hlcText ?? '', int(2 ** 32)] : hlcText === null ? [thing] : [thing, hlcText];
  const handMadeChanges = (receiver, withHash) => {
    const leafStamp = () => {
      const h = stampHlc(receiver);
      return withHash ? [wireLeaf(), h, int(2 ** 32)] : h === '' && chance(0.5) ? [wireLeaf()] : [wireLeaf(), h];
    };
    // No empty row or table: once one gets cells, its hash term is a deliberate deviation
    // (README, "Conformance with TinyBase"; tests/hashes.rs).
    const tablesThing = o(pickSome(TABLES, int(3)).map((t) => [
      t,
      stamp(o(pickSome(ROWS, 1 + int(2)).map((rr) => [
        rr,
        stamp(o(pickSome(CELLS, 1 + int(2)).map((c) => [c, leafStamp()])), containerHlc(receiver), withHash),
      ])), containerHlc(receiver), withHash),
    ]));
    const valuesThing = o(pickSome(VALUES, int(3)).map((v) => [v, leafStamp()]));
    return [stamp(tablesThing, containerHlc(receiver), withHash), stamp(valuesThing, containerHlc(receiver), withHash)];
  };
  // Breaks a well-formed changes array in one of the ways TinyBase rejects whole.
  const corrupt = (changes, receiver) => {
    const bad = clone(changes);
    switch (int(6)) {
      case 0: return bad.slice(0, 2).concat([0]); // trailing 0, not 1
      case 1: return [bad[0]]; // wrong length
      case 2: bad[1] = [o([['v', ['x', hlc(storeNow(receiver), 0, 'ABCDE').slice(1)]]])]; return bad; // 15-char HLC
      case 3: bad[1] = [o([['v', ['x', hlc(storeNow(receiver), 0, 'ABCDE'), 0, 'extra']]])]; return bad; // 4-element stamp
      case 4: bad[0] = [[], '']; return bad; // array where an object belongs
      default: bad[1] = [o([['v', ['x', hlc(storeNow(receiver) + 400000, 0, 'ABCDE')]]])]; return bad; // far future
    }
  };
  const clone = (v) =>
    v instanceof Obj ? new Obj(v.entries.map(([k, x]) => [k, clone(x)])) : Array.isArray(v) ? v.map(clone) : v;

  const mergeStep = (store, other) => {
    const k = r();
    if (k < 0.3) return {store, op: 'merge', with: other};
    if (k < 0.55) return {store, op: 'applyMergeableChanges', argsFrom: [{store: other, op: 'getMergeableContent'}]};
    if (k < 0.65) return {store, op: 'setMergeableContent', argsFrom: [{store: other, op: 'getMergeableContent'}]};
    if (k < 0.9) {
      const changes = [...handMadeChanges(store, chance(0.15)), 1];
      return {store, op: 'applyMergeableChanges', argsFrom: [{value: chance(0.1) ? corrupt(changes, store) : changes}]};
    }
    if (k < 0.95) {
      // content form (2 elements, hashes everywhere). Not given to setMergeableContent: its
      // made-up hashes TinyBase keeps, we recompute (a deliberate deviation; tests/hashes.rs).
      return {store, op: 'applyMergeableChanges', argsFrom: [{value: handMadeChanges(store, true)}]};
    }
    return {store, op: 'applyMergeableChanges', argsFrom: [{value: corrupt([...handMadeChanges(store, false), 1], store)}]};
  };

  // ---- transactions
  const transactionStep = (store, depth) => {
    const steps = [];
    const others = storeNames.filter((n) => n !== store);
    const n = 1 + int(5);
    for (let j = 0; j < n; j++) {
      const k = r();
      if (k < 0.62) steps.push(mutation(store));
      else if (k < 0.72) steps.push(getter(store));
      else if (k < 0.78) steps.push({store, op: 'getTransactionChanges', args: []});
      else if (k < 0.84) steps.push({store, op: 'getTransactionMergeableChanges', args: chance(0.3) ? [] : [chance(0.5)]});
      else if (k < 0.88 && depth < 2) steps.push(transactionStep(store, depth + 1));
      else if (k < 0.92) steps.push(clockStep());
      else if (k < 0.95) steps.push(mergeStep(store, pick(others)));
      else steps.push(mutation(store));
    }
    if (chance(0.5)) steps.push({store, op: 'getTransactionMergeableChanges', args: [chance(0.5)]});
    if (chance(0.3)) {
      // what a synchronizer would send from inside this transaction
      steps.push({
        store: pick(others),
        op: 'applyMergeableChanges',
        argsFrom: [{store, op: 'getTransactionMergeableChanges', args: [chance(0.5)]}],
      });
    }
    return {store, op: 'transaction', rollback: chance(0.25), steps};
  };

  // ---- the script
  if (chance(0.8)) {
    for (const store of storeNames) {
      if (store === 'a' || chance(0.5)) {
        for (let j = 0, n = 2 + int(6); j < n; j++) script.steps.push(addListenerStep(store));
      }
    }
  }
  for (let i = 0; i < stepCount; i++) {
    const store = pick(storeNames);
    const other = pick(storeNames.filter((n) => n !== store));
    const k = r();
    if (k < 0.1) script.steps.push(clockStep());
    else if (k < 0.5) script.steps.push(mutation(store));
    else if (k < 0.6) script.steps.push(transactionStep(store, 0));
    else if (k < 0.72) script.steps.push(mergeStep(store, other));
    else if (k < 0.84) script.steps.push(diffStep(store, other));
    else if (k < 0.96) script.steps.push(getter(store));
    else if (k < 0.98) script.steps.push(addListenerStep(store));
    else if (liveListeners.length) {
      const [owner, id] = liveListeners.splice(int(liveListeners.length), 1)[0];
      script.steps.push({store: owner, op: 'delListener', id});
    }
  }
  return script;
};

export const scriptText = (script) =>
  '{\n "description": ' + JSON.stringify(script.description) +
  ',\n "now": ' + script.now +
  ',\n "stores": ' + JSON.stringify(script.stores) +
  ',\n "steps": [' + script.steps.map((s) => '\n  ' + write(s)).join(',') + '\n ]\n}\n';

const main = ([outDir, firstSeed = '1', count = '10', stepCount = '60']) => {
  if (!outDir) {
    process.stderr.write('usage: node gen.mjs OUT_DIR FIRST_SEED COUNT [STEPS]\n');
    process.exit(2);
  }
  mkdirSync(outDir, {recursive: true});
  for (let seed = +firstSeed; seed < +firstSeed + +count; seed++) {
    const text = scriptText(generate(seed, +stepCount));
    const expected = runScript(JSON.parse(text));
    writeFileSync(`${outDir}/seed-${seed}.json`, fillText(text, expected));
  }
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
