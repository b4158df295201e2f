#!/usr/bin/env node
// A TinyBase (10.0.1) MergeableStore + custom synchronizer driven over stdin/stdout,
// one JSON object per line. Line protocol: see README.md in this folder.
//
//   node peer.mjs --unique-id ID [--now MS] [--timeout SECONDS] [--log-bodies] [--no-log]
//
// stdout lines (peer -> host):
//   {"type":"ready","uniqueId":ID,"impl":"tinybase","version":"10.0.1"}   once, at start
//   {"type":"msg","to":CLIENT|null,"requestId":R|null,"message":N,"body":B} protocol message out
//   {"type":"result","id":K,"value":V}  /  {"type":"error","id":K,"message":S} command answers
//   {"type":"log","event":"send"|"receive"|"ignoredError"|"invalidLine",...} diagnostics
// stdin lines (host -> peer):
//   {"type":"msg","from":CLIENT,"requestId":R|null,"message":N,"body":B}  protocol message in
//   {"type":"cmd","id":K,"op":OP,"args":[...]}                            command
// All JSON is in TinyBase's wire encoding: undefined <-> the one-char string U+FFFC.
import {createInterface} from 'node:readline';
import {createMergeableStore} from 'tinybase';
import {createCustomSynchronizer} from 'tinybase/synchronizers';
import {UNDEFINED_MARKER, wireStringify, fromWire} from './hub.mjs';

// The wire encoding helpers live in hub.mjs (shared with the other peers).
export {UNDEFINED_MARKER, wireStringify, fromWire};

const parseArgs = (argv) => {
  const opts = {uniqueId: undefined, now: 1700000000000, timeout: 1, logBodies: false, log: true};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--unique-id') opts.uniqueId = argv[++i];
    else if (a === '--now') opts.now = Number(argv[++i]);
    else if (a === '--timeout') opts.timeout = Number(argv[++i]);
    else if (a === '--log-bodies') opts.logBodies = true;
    else if (a === '--no-log') opts.log = false;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.uniqueId === undefined) throw new Error('--unique-id is required');
  if (!Number.isFinite(opts.now)) throw new Error('--now must be a number');
  if (!(opts.timeout >= 0)) throw new Error('--timeout must be a number of seconds');
  return opts;
};

const main = () => {
  const opts = parseArgs(process.argv.slice(2));
  let now = opts.now;
  let lastActivity = Date.now();
  let destroyed = false;
  let exiting = false;

  const out = (obj) => process.stdout.write(wireStringify(obj) + '\n');
  const log = (event, fields) => opts.log && out({type: 'log', event, ...fields});

  const store = createMergeableStore(opts.uniqueId, () => now);
  let receive;
  const synchronizer = createCustomSynchronizer(
    store,
    (to, requestId, message, body) => {
      lastActivity = Date.now();
      out({type: 'msg', to: to ?? null, requestId: requestId ?? null, message, body});
    },
    (receiveFn) => (receive = receiveFn),
    () => (destroyed = true),
    opts.timeout,
    (to, requestId, message, body) =>
      log('send', {to: to ?? null, requestId: requestId ?? null, message,
        ...(opts.logBodies ? {body} : {})}),
    (from, requestId, message, body) =>
      log('receive', {from: from ?? null, requestId: requestId ?? null, message,
        ...(opts.logBodies ? {body} : {})}),
    (error) => log('ignoredError', {error: String(error?.message ?? error)}),
  );

  const SYNC_OPS = new Set([
    'startSync', 'stopSync', 'destroy', 'load', 'save', 'startAutoLoad', 'stopAutoLoad',
    'startAutoSave', 'stopAutoSave', 'startAutoPersisting', 'stopAutoPersisting',
    'isAutoLoading', 'isAutoSaving', 'getStatus', 'getStats', 'getSynchronizerStats',
  ]);
  const ENCODED_SLOTS = {
    getEncodedMergeableContent: 1,
    getEncodedTransactionMergeableChanges: 2,
    setEncodedMergeableContent: 3,
    applyEncodedMergeableChanges: 4,
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  const callStoreOp = (op, args) => {
    if (op in ENCODED_SLOTS) return store.__[ENCODED_SLOTS[op]](...args);
    if (typeof store[op] !== 'function') throw new Error(`unknown op ${op}`);
    return store[op](...args);
  };

  const runCommand = async (cmd) => {
    const op = cmd.op;
    const args = (cmd.args ?? []).map(fromWire);
    switch (op) {
      case 'now':
        if (args.length) now = Number(args[0]);
        return now;
      case 'wait':
        await sleep(Number(args[0] ?? 0));
        return null;
      case 'idle': {
        // Resolves once no protocol message was sent or received for `quiet` ms
        // (fails after `max` ms, default 10000).
        const quiet = Number(args[0] ?? 50);
        const max = Number(args[1] ?? 10000);
        const start = Date.now();
        for (;;) {
          const since = Date.now() - lastActivity;
          if (since >= quiet) return null;
          if (Date.now() - start > max) throw new Error(`not idle after ${max} ms`);
          await sleep(Math.min(quiet - since, 10) + 1);
        }
      }
      case 'transaction': {
        const steps = cmd.steps ?? args[0] ?? [];
        const results = [];
        store.transaction(() => {
          for (const step of steps) {
            const value = callStoreOp(step.op, (step.args ?? []).map(fromWire));
            results.push(value === store ? null : value);
          }
        });
        return results;
      }
      case 'exit':
        exiting = true;
        if (!destroyed) await synchronizer.destroy();
        return null;
      default:
        if (SYNC_OPS.has(op)) {
          const value = await synchronizer[op](...args);
          return value === synchronizer ? null : value;
        }
        {
          const value = callStoreOp(op, args);
          return value === store ? null : value;
        }
    }
  };

  const rl = createInterface({input: process.stdin, crlfDelay: Infinity});
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (error) {
      log('invalidLine', {error: String(error.message), line: line.slice(0, 200)});
      return;
    }
    if (obj?.type === 'msg') {
      lastActivity = Date.now();
      // The synchronizer validates the message itself (invalid -> onIgnoredError tinybase:14).
      receive?.(obj.from ?? null, obj.requestId ?? null, obj.message, fromWire(obj.body));
    } else if (obj?.type === 'cmd') {
      // Started synchronously (in line order relative to incoming messages); only the
      // answer is asynchronous.
      runCommand(obj)
        .then(
          (value) => out({type: 'result', id: obj.id, value: value ?? null}),
          (error) => out({type: 'error', id: obj.id, message: String(error?.message ?? error)}),
        )
        .then(() => {
          if (exiting) process.exit(0);
        });
    } else {
      log('invalidLine', {error: 'unknown line type', line: line.slice(0, 200)});
    }
  });
  rl.on('close', async () => {
    // Host closed stdin: shut down cleanly (pending request timers would keep node alive).
    try {
      if (!destroyed) await synchronizer.destroy();
    } finally {
      process.exit(0);
    }
  });
  process.stdout.on('error', () => process.exit(0)); // host went away (EPIPE)

  out({type: 'ready', uniqueId: opts.uniqueId, impl: 'tinybase', version: '10.0.1'});
};

try {
  main();
} catch (error) {
  process.stderr.write(`peer.mjs: ${error.message}\n`);
  process.exit(2);
}
