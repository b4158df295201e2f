#!/usr/bin/env node
// The TinyBase (10.0.1) peer of the randomized interop suite: the line protocol of
// ../sync/README.md (as ../sync/peer.mjs) with the real clock, and a `writers` command that
// edits the store from timers on the event loop while it syncs.
//
//   node tb_peer.mjs --unique-id ID [--timeout SECONDS]
import {createInterface} from 'node:readline';
import {createMergeableStore} from 'tinybase';
import {createCustomSynchronizer} from 'tinybase/synchronizers';
import {fromWire, wireStringify} from '../sync/hub.mjs';
import {randomOp, rngFrom} from './edits.mjs';

const argv = process.argv.slice(2);
const opt = (name, d) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : d);
const uniqueId = opt('--unique-id', 'tb-peer');
const timeout = Number(opt('--timeout', 1));

const out = (obj) => process.stdout.write(wireStringify(obj) + '\n');
const store = createMergeableStore(uniqueId);
let receive;
let destroyed = false;
let started = false; // startSync has finished its initial load and save
const synchronizer = createCustomSynchronizer(
  store,
  (to, requestId, message, body) =>
    out({type: 'msg', to: to ?? null, requestId: requestId ?? null, message, body}),
  (receiveFn) => (receive = receiveFn),
  () => (destroyed = true),
  timeout,
  undefined,
  undefined,
  (error) => out({type: 'log', event: 'ignoredError', error: String(error?.message ?? error)}),
);

// `writers {seed, chains, count, maxPauseMs, txPercent, quietPercent}`: `chains` timer chains
// each make `count` random edits (some in transactions of 2–4), one per timer callback, as
// random_peer.rs (the longer pauses included).
const writers = ({seed = 1, chains = 1, count = 20, maxPauseMs = 5, txPercent = 10, quietPercent = 0} = {}) =>
  Promise.all(
    Array.from({length: chains}, (_, c) => new Promise((resolve) => {
      const below = rngFrom(BigInt(seed) * 1000003n + BigInt(c) + 500n);
      let left = count;
      let loading = 0;
      let edits = 0;
      const tick = () => {
        if (left-- <= 0 || destroyed) return resolve([edits, loading]);
        const steps = below(100) < txPercent ? 2 + below(3) : 1;
        const ops = Array.from({length: steps}, () => randomOp(store, below, `${uniqueId}${c}-`));
        store.transaction(() => ops.forEach((op) => op()));
        edits += steps;
        // TinyBase's save() skips a transaction made while Loading: it is never sent.
        if (synchronizer.getStatus() === 1 && started) loading++;
        setTimeout(tick, below(100) < quietPercent ? 50 + below(200) : below(maxPauseMs + 1));
      };
      setTimeout(tick, 0);
    })),
  ).then((counts) => ({
    edits: counts.reduce((a, [e]) => a + e, 0),
    whileLoading: counts.reduce((a, [, l]) => a + l, 0),
  }));

// `react {seed, percent}`: a cell listener on table t0 that, for `percent` of the changes
// (local or applied from peers), writes the new value to table `seen`, row = this peer. When
// the change is one being applied from a peer, TinyBase is Loading and never sends that write.
let reactions = 0;
const react = ({seed = 1, percent = 30} = {}) => {
  const below = rngFrom(BigInt(seed) * 7919n + 11n);
  store.addCellListener('t0', null, null, (_store, _t, rowId, cellId, newCell) => {
    if (below(100) < percent) {
      reactions++;
      store.setCell('seen', uniqueId, `${rowId}-${cellId}`, newCell ?? 'deleted');
    }
  }, true); // a mutator listener: TinyBase ignores writes from the others
  return null;
};

const run = async ({op, args = []}) => {
  args = args.map(fromWire);
  switch (op) {
    case 'startSync':
      await synchronizer.startSync();
      started = true;
      return null;
    case 'stopSync':
      await synchronizer.stopSync();
      return null;
    case 'writers':
      return writers(args[0]);
    case 'react':
      return react(args[0]);
    case 'reactions':
      return reactions;
    case 'exit':
      if (!destroyed) await synchronizer.destroy();
      return null;
    default: {
      if (typeof store[op] !== 'function') throw new Error(`unknown op ${op}`);
      const value = store[op](...args);
      return value === store ? null : value;
    }
  }
};

const rl = createInterface({input: process.stdin, crlfDelay: Infinity});
rl.on('line', (line) => {
  let obj;
  try {
    obj = JSON.parse(line);
  } catch {
    return;
  }
  if (obj?.type === 'msg') {
    receive?.(obj.from ?? null, obj.requestId ?? null, obj.message, fromWire(obj.body));
  } else if (obj?.type === 'cmd') {
    run(obj)
      .then(
        (value) => out({type: 'result', id: obj.id, value: value ?? null}),
        (error) => out({type: 'error', id: obj.id, message: String(error?.message ?? error)}),
      )
      .then(() => obj.op === 'exit' && process.exit(0));
  }
});
rl.on('close', async () => {
  try {
    if (!destroyed) await synchronizer.destroy();
  } finally {
    process.exit(0);
  }
});
process.stdout.on('error', () => process.exit(0));
out({type: 'ready', uniqueId, impl: 'tinybase', version: '10.0.1'});
