// TinyBase's side of the persistence interop (issue 9): the real tinybase@10.0.1 file persister
// and sqlite-wasm persister (JSON mode, @sqlite.org/sqlite-wasm, offline in node), driven from
// tests/persist_interop.rs. Every command prints one JSON line on stdout.
//
//   node tb_persist.mjs save file   mergeable|plain PATH
//   node tb_persist.mjs load file   mergeable|plain PATH
//   node tb_persist.mjs save sqlite mergeable|plain DB_FILE [TABLE ID_COLUMN STORE_COLUMN]
//   node tb_persist.mjs load sqlite mergeable|plain DB_FILE [TABLE ID_COLUMN STORE_COLUMN]
//   node tb_persist.mjs autoload file mergeable|plain PATH    (startAutoLoad, then destroy)
//   node tb_persist.mjs auto file   mergeable|plain PATH      (commands on stdin, see below)
//
// save: builds the fixture content (fixture() below: every kind of cell and value, deletions,
// unicode and awkward ids), saves it with TinyBase's persister and prints what TinyBase holds.
// For sqlite the database lives in memory (sqlite-wasm) and its bytes are exported to DB_FILE
// (sqlite3_js_db_export): that file is what the Rust side opens.
// load: a fresh store, TinyBase's persister loads PATH (sqlite: DB_FILE's bytes deserialized
// into an in-memory sqlite-wasm database), and prints what TinyBase then holds.
// Printed: {"content": TEXT, "hashes": [tablesHash, valuesHash] | null, "errors": [...]} where TEXT
// is exactly what TinyBase's file persister would write for that store (mergeable: the wire
// content with stamps and hashes; plain: [tables, values] with objects as U+FFFD strings).
// Any error TinyBase reports (onIgnoredError) makes the command fail (exit 1).
//
// auto: the store is persisted with startAutoLoad + startAutoSave (TinyBase's usual app set-up)
// and stays up; one JSON command per stdin line, one JSON answer line each:
//   ["setCell", t, r, c, value] ["delCell", t, r, c] ["setValue", v, value] ["delValue", v]
//   ["state"] -> {"content", "hashes", "errors", "saves", "loads"}      ["quit"] -> destroys, exits
// It prints {"ready": true} once auto-load and auto-save have started.
import {readFileSync, writeFileSync} from 'node:fs';
import {createInterface} from 'node:readline';
import {createMergeableStore, createStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';

const UNDEFINED = '\uFFFC';
// What TinyBase's persisters write (jsonStringWithUndefined of the store's encoded content).
const persistedText = (store) =>
  JSON.stringify(store.isMergeable() ? store.__[1]() : store._[7](), (_k, v) => (v === undefined ? UNDEFINED : v));
const hashesOf = (store) => (store.isMergeable() ? store.getMergeableContentHashes() : null);

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const fail = (message) => {
  process.stderr.write(`tb_persist.mjs: ${message}\n`);
  process.exit(1);
};

const newStore = (kind, id) => {
  if (kind === 'mergeable') return createMergeableStore(id);
  if (kind === 'plain') return createStore();
  return fail(`store kind is mergeable or plain, not ${kind}`);
};

// The fixture (fixture.json, shared with the Rust side): every kind of cell and value TinyBase
// persists, in several transactions (so the stamps differ), with deleted cells, rows, a deleted
// table and a deleted value, and ids that test key order (integer-like ids come first in JS
// objects) and string escaping. A step is [method, ...args] or ["transaction", [steps]].
const FIXTURE = JSON.parse(readFileSync(new URL('fixture.json', import.meta.url), 'utf8'));
const apply = (store, steps) => {
  for (const [op, ...args] of steps) {
    if (op === 'transaction') store.transaction(() => apply(store, args[0]));
    else store[op](...args);
  }
};
const fixture = (store) => apply(store, FIXTURE);

const parseNames = (rest) => {
  if (rest.length === 0) return undefined;
  if (rest.length !== 3) fail('sqlite names are TABLE ID_COLUMN STORE_COLUMN');
  const [storeTableName, storeIdColumnName, storeColumnName] = rest;
  return {mode: 'json', storeTableName, storeIdColumnName, storeColumnName};
};

const sqliteModule = async () => {
  try {
    const {default: init} = await import('@sqlite.org/sqlite-wasm');
    const {createSqliteWasmPersister} = await import('tinybase/persisters/persister-sqlite-wasm');
    return [await init(), createSqliteWasmPersister];
  } catch (error) {
    return fail(`@sqlite.org/sqlite-wasm is missing or broken (run npm ci in tests/interop): ${error}`);
  }
};

// A database file's bytes in an in-memory sqlite-wasm database. A database left in WAL mode
// (its header's bytes 18-19 are 2) is switched to rollback-journal mode in the copy: the in-memory
// VFS has no WAL, and a database whose WAL was checkpointed on close holds everything in the file.
const openBytes = (sqlite3, bytes) => {
  if (bytes.length >= 20 && (bytes[18] === 2 || bytes[19] === 2)) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  const db = new sqlite3.oo1.DB(':memory:');
  const pointer = sqlite3.wasm.allocFromTypedArray(bytes);
  const {capi} = sqlite3;
  const rc = capi.sqlite3_deserialize(
    db.pointer,
    'main',
    pointer,
    bytes.length,
    bytes.length,
    capi.SQLITE_DESERIALIZE_FREEONCLOSE | capi.SQLITE_DESERIALIZE_RESIZEABLE,
  );
  db.checkRc(rc);
  return db;
};

const run = async () => {
  const [command, backend, kind, path, ...rest] = process.argv.slice(2);
  if (!command || !backend || !kind || !path) {
    fail('usage: tb_persist.mjs save|load|auto file|sqlite mergeable|plain PATH [TABLE ID_COLUMN STORE_COLUMN]');
  }
  const errors = [];
  const onIgnoredError = (error) => errors.push(String(error?.stack ?? error));
  const report = (store) => {
    if (errors.length) fail(`TinyBase reported errors:\n${errors.join('\n')}`);
    out({content: persistedText(store), hashes: hashesOf(store), errors});
  };
  const store = newStore(kind, 'tinybase-side');

  if (backend === 'file' && command === 'save') {
    fixture(store);
    const persister = createFilePersister(store, path, onIgnoredError);
    await persister.save();
    await persister.destroy();
    const written = readFileSync(path, 'utf8');
    if (written !== persistedText(store)) fail('the file is not the store content as expected');
    return report(store);
  }
  if (backend === 'file' && command === 'load') {
    const persister = createFilePersister(store, path, onIgnoredError);
    await persister.load();
    await persister.destroy();
    return report(store);
  }
  if (backend === 'sqlite' && (command === 'save' || command === 'load')) {
    const [sqlite3, createSqliteWasmPersister] = await sqliteModule();
    const db = command === 'save' ? new sqlite3.oo1.DB(':memory:') : openBytes(sqlite3, new Uint8Array(readFileSync(path)));
    const persister = createSqliteWasmPersister(store, sqlite3, db, parseNames(rest), undefined, onIgnoredError);
    if (command === 'save') {
      fixture(store);
      await persister.save();
    } else {
      await persister.load();
    }
    await persister.destroy();
    if (command === 'save') writeFileSync(path, sqlite3.capi.sqlite3_js_db_export(db));
    db.close();
    return report(store);
  }
  if (backend === 'file' && command === 'autoload') {
    // startAutoLoad alone, as an app that only reads: on a missing file TinyBase creates it empty.
    const persister = createFilePersister(store, path, onIgnoredError);
    await persister.startAutoLoad();
    await persister.destroy();
    return out({content: persistedText(store), hashes: hashesOf(store), errors});
  }
  if (backend === 'file' && command === 'auto') return auto(store, path, errors, onIgnoredError);
  return fail(`unknown command ${command} ${backend}`);
};

const auto = async (store, path, errors, onIgnoredError) => {
  const persister = createFilePersister(store, path, onIgnoredError);
  await persister.startAutoLoad();
  await persister.startAutoSave();
  out({ready: true});
  const lines = createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      const [op, ...args] = JSON.parse(line);
      switch (op) {
        case 'setCell':
        case 'delCell':
        case 'setValue':
        case 'delValue':
          store[op](...args);
          answer = {ok: true};
          break;
        case 'state': {
          const {loads, saves} = persister.getStats();
          answer = {content: persistedText(store), hashes: hashesOf(store), errors, loads, saves};
          break;
        }
        case 'quit':
          await persister.destroy();
          out({ok: true});
          process.exit(0);
          break;
        default:
          answer = {error: `unknown op ${op}`};
      }
    } catch (error) {
      answer = {error: String(error)};
    }
    out(answer);
  }
  await persister.destroy();
};

await run();
