#!/usr/bin/env node
// TinyBase (10.0.1) WebSocket clients for the interop tests (README.md): any number of named
// clients in one process, each a MergeableStore with a `createWsSynchronizer` on a `ws`
// WebSocket: legacy (one socket each) or multiplexed (subprotocol `tinybase`, several clients
// sharing one named socket), with an optional fragment size.
//
//   node tb_client.mjs
//
// Stdin takes the command lines of commands.mjs, `args` being `[{...}]` (commands run
// concurrently: a `writers` may still be running when the next command arrives). Events are
// `{"type": "log", "event", ...}` lines. Prints `{"type": "ready"}` first.
//   open {name, url, channel?, socket?, fragmentSize?, timeout?, headers?}
//       (Re)connects client `name` (its store kept across reopens, as an app keeps its store
//       when it makes a new socket after a disconnect: TinyBase's synchronizers never
//       reconnect) and starts syncing. With `channel` it is multiplexed, on the socket named
//       `socket` (shared with the other clients that name it) or a socket of its own.
//   close {name}          destroys its synchronizer (Unsubscribe when multiplexed); keeps the store
//   terminate {socket}    drops a socket abruptly (no close handshake)
//   writers {name, seed, count, maxPauseMs, txPercent, tag?} random edits on timers (../random/edits.mjs)
//       -> {edits, whileLoading}: whileLoading counts transactions made while the synchronizer
//       was loading, which TinyBase never sends (PROTOCOL.md 6.4)
//   call {name, method, args}   a store method (setCell, delRow, ...) with wire arguments
//   save {name}           the synchronizer's save(): broadcasts its content hashes
//   state {name, content?}  -> {hashes, content?, status, sends, receives}
//   info {name}           -> {open, closed: {code, reason} | null, ignoredErrors}
//   exit
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {fromWire, wireStringify} from '../sync/hub.mjs';
import {randomOp, rngFrom} from '../random/edits.mjs';
import {serveCommands} from './commands.mjs';

const out = (obj) => process.stdout.write(wireStringify(obj) + '\n');
const log = (event, fields) => out({type: 'log', event, ...fields});

/** name -> {store, synchronizer, socket, ignoredErrors} */
const clients = new Map();
/** socket name -> WebSocket, for multiplexed clients sharing one */
const sockets = new Map();
/** WebSocket -> {code, reason} once closed */
const closes = new WeakMap();

const client = (name) => {
  const c = clients.get(name);
  if (!c) throw new Error(`no client ${name}`);
  return c;
};

const newSocket = (url, multiplexed, headers, label) => {
  const ws = new WebSocket(url, multiplexed ? ['tinybase'] : [], {headers});
  // Without a listener an 'error' event (a refused upgrade, a reset) would end the process.
  ws.on('open', () => log('socketOpen', {socket: label}));
  ws.on('error', (error) => log('socketError', {socket: label, error: String(error?.message ?? error)}));
  ws.on('unexpected-response', (_req, res) => {
    log('refused', {socket: label, status: res.statusCode});
    ws.terminate();
  });
  ws.on('close', (code, reason) => {
    closes.set(ws, {code, reason: String(reason)});
    log('closed', {socket: label, code, reason: String(reason)});
  });
  return ws;
};

const open = async ({name, url, channel, socket, fragmentSize, timeout = 1, headers}) => {
  const c = clients.get(name) ?? {store: createMergeableStore(), ignoredErrors: []};
  const previous = c.synchronizer;
  // `info` tells about the new socket from now on.
  c.synchronizer = undefined;
  c.socket = undefined;
  clients.set(name, c);
  await previous?.destroy();
  const multiplexed = channel != null;
  let ws = multiplexed && socket ? sockets.get(socket) : undefined;
  if (!ws || ws.readyState > WebSocket.OPEN) {
    ws = newSocket(url, multiplexed, headers, socket ?? name);
    if (multiplexed && socket) sockets.set(socket, ws);
  }
  c.socket = ws;
  const onIgnoredError = (error) => {
    c.ignoredErrors.push(String(error?.message ?? error));
    log('ignoredError', {name, error: String(error?.message ?? error)});
  };
  const synchronizer = await (multiplexed
    ? createWsSynchronizer(c.store, ws, channel, timeout, undefined, undefined, onIgnoredError, fragmentSize)
    : createWsSynchronizer(c.store, ws, timeout, undefined, undefined, onIgnoredError, fragmentSize));
  c.synchronizer = synchronizer;
  await synchronizer.startSync();
  return null;
};

const writers = ({name, seed = 1, count = 20, maxPauseMs = 5, txPercent = 10, tag = name}) => {
  const c = client(name);
  const below = rngFrom(BigInt(seed) * 1000003n + 500n);
  return new Promise((resolve) => {
    let left = count;
    let edits = 0;
    let whileLoading = 0;
    const tick = () => {
      if (left-- <= 0) return resolve({edits, whileLoading});
      const steps = below(100) < txPercent ? 2 + below(3) : 1;
      const ops = Array.from({length: steps}, () => randomOp(c.store, below, `${tag}-`));
      c.store.transaction(() => ops.forEach((op) => op()));
      edits += steps;
      if (c.synchronizer?.getStatus() === 1) whileLoading++;
      setTimeout(tick, below(maxPauseMs + 1));
    };
    setTimeout(tick, 0);
  });
};

const run = async (op, [a = {}]) => {
  switch (op) {
    case 'open':
      return open(a);
    case 'close': {
      const c = client(a.name);
      await c.synchronizer?.destroy();
      c.synchronizer = undefined;
      return null;
    }
    case 'terminate': {
      const ws = sockets.get(a.socket) ?? clients.get(a.socket)?.socket;
      if (!ws) throw new Error(`no socket ${a.socket}`);
      ws.terminate();
      return null;
    }
    case 'writers':
      return writers(a);
    case 'call': {
      const c = client(a.name);
      const value = c.store[a.method](...(a.args ?? []).map(fromWire));
      return value === c.store ? null : value;
    }
    case 'save':
      await client(a.name).synchronizer?.save();
      return null;
    case 'state': {
      const c = client(a.name);
      return {
        hashes: c.store.getMergeableContentHashes(),
        content: a.content === false ? undefined : c.store.getContent(),
        status: c.synchronizer?.getStatus() ?? null,
        ...(c.synchronizer?.getSynchronizerStats() ?? {}),
      };
    }
    case 'info': {
      const c = client(a.name);
      return {
        open: c.socket?.readyState === WebSocket.OPEN,
        closed: (c.socket && closes.get(c.socket)) ?? null,
        ignoredErrors: c.ignoredErrors,
      };
    }
    case 'exit':
      for (const c of clients.values()) await c.synchronizer?.destroy().catch(() => {});
      process.exit(0);
    default:
      throw new Error(`unknown op ${op}`);
  }
};

serveCommands(run, out, () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
out({type: 'ready'});
