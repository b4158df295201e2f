// In-node message hub for synchronizer interop tests. It starts peer processes that speak
// the line protocol of README.md (node peer.mjs, or any other program such as a Rust
// peer), routes protocol messages between them by client id (= the peer's name in the
// hub), drives them with commands, injects faults, and records every message.
//
//   import {createHub, normalizeSequence} from './hub.mjs';
//   const hub = createHub();
//   await hub.addNodePeer('A', {uniqueId: 'a', timeout: 0.5});
//   await hub.addPeer('B', './target/debug/tb-peer', ['--unique-id', 'b']);
//   await hub.cmd('A', 'setCell', ['t', 'r', 'c', 1]);
//   await hub.cmd('A', 'startSync');
//   await hub.idle(50);
//   console.log(normalizeSequence(hub.records));
//   await hub.close();
import {spawn} from 'node:child_process';
import {createInterface} from 'node:readline';
import {fileURLToPath} from 'node:url';
import {dirname, join} from 'node:path';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const PEER_SCRIPT = join(HERE, 'peer.mjs');
export const MESSAGE_NAMES = [
  'Response', 'GetContentHashes', 'ContentHashes', 'ContentDiff',
  'GetTableDiff', 'GetRowDiff', 'GetCellDiff', 'GetValueDiff',
];
export const UNDEFINED_MARKER = '\uFFFC';
// JS value -> JSON text, undefined anywhere -> "\uFFFC" (TinyBase's jsonStringWithUndefined).
export const wireStringify = (value) =>
  JSON.stringify(value, (_key, v) => (v === undefined ? UNDEFINED_MARKER : v));
// Parsed wire JSON -> JS value ("\uFFFC" at any depth of arrays/objects -> undefined).
// Object.fromEntries keeps "__proto__" an own data property.
export const fromWire = (value) =>
  value === UNDEFINED_MARKER
    ? undefined
    : Array.isArray(value)
      ? value.map(fromWire)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]))
        : value;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Id normalization: transaction ids (11 alphabet chars) -> T1, T2, ... and request ids
// (tx + "." + 4 chars) -> Tn.R1, Tn.R2, ... (R numbered per transaction), in order of
// first appearance. Anything else that is not null -> X1, X2, ...
const TX = /^[-0-9A-Za-z_]{11}$/;
const REQ = /^([-0-9A-Za-z_]{11})\.([-0-9A-Za-z_]{4})$/;
export const createIdNormalizer = () => {
  const txs = new Map();
  const reqs = new Map();
  const others = new Map();
  const tx = (id) => {
    if (!txs.has(id)) txs.set(id, {name: `T${txs.size + 1}`, requests: 0});
    return txs.get(id);
  };
  const normalize = (id) => {
    if (id === null || id === undefined) return null;
    if (typeof id !== 'string') return id;
    if (TX.test(id)) return tx(id).name;
    const m = REQ.exec(id);
    if (m) {
      if (!reqs.has(id)) {
        const t = tx(m[1]);
        reqs.set(id, `${t.name}.R${++t.requests}`);
      }
      return reqs.get(id);
    }
    if (!others.has(id)) others.set(id, `X${others.size + 1}`);
    return others.get(id);
  };
  // Replaces known raw ids inside free text (e.g. "tinybase:3:B.<req>.4").
  const normalizeText = (text) =>
    String(text).replace(/[-0-9A-Za-z_]{11}(\.[-0-9A-Za-z_]{4})?/g, (s) =>
      reqs.has(s) ? reqs.get(s) : txs.has(s) ? txs.get(s).name : s,
    );
  return {normalize, normalizeText};
};

// records (hub.records) -> comparable sequence. Marks are kept as {mark}; each message is
// {from, to, requestId, message, type, body} plus delivery faults when there were any.
export const normalizeSequence = (records, normalizer = createIdNormalizer()) =>
  records.map((r) =>
    r.mark !== undefined
      ? {mark: r.mark}
      : {
          from: r.from,
          to: r.to,
          requestId: normalizer.normalize(r.requestId),
          message: r.message,
          type: MESSAGE_NAMES[r.message] ?? `?${r.message}`,
          body: r.body,
          ...(r.injected ? {injected: true} : {}),
          ...(r.deliveries.some((d) => d.fault) || r.undeliverable
            ? {deliveries: r.deliveries, ...(r.undeliverable ? {undeliverable: true} : {})}
            : {}),
        },
  );

// JSON-value equality: object key order ignored, array order significant.
export const sameJson = (a, b) => {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length &&
    keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
};

// Fault matcher from a JSON description {from, to, target, message, type, requestId (regex)}.
export const matcher = (spec = {}) => (record, target) =>
  (spec.from === undefined || spec.from === record.from) &&
  (spec.to === undefined || spec.to === record.to) &&
  (spec.target === undefined || spec.target === target) &&
  (spec.message === undefined || [].concat(spec.message).includes(record.message)) &&
  (spec.type === undefined || [].concat(spec.type).includes(MESSAGE_NAMES[record.message])) &&
  (spec.requestId === undefined || new RegExp(spec.requestId).test(record.requestId ?? ''));

// ---------------------------------------------------------------------------------------
export const createHub = ({
  autoRoute = true,
  commandTimeoutMs = 30000,
  readyTimeoutMs = 15000,
  echoStderr = !!process.env.HUB_DEBUG,
  trace = !!process.env.HUB_TRACE,
} = {}) => {
  const peers = new Map(); // name -> peer
  const records = [];
  const queue = []; // held records (manual routing): {record}
  const faults = [];
  const held = new Map(); // target -> [{record}] (reorder fault)
  let routing = autoRoute;
  let seq = 0;
  let cmdId = 0;
  let lastActivity = Date.now();
  let delayedPending = 0;
  let outstanding = 0;
  let arrivalWaiters = [];
  const touch = () => {
    lastActivity = Date.now();
    const waiters = arrivalWaiters;
    arrivalWaiters = [];
    waiters.forEach((w) => w());
  };

  const writeTo = (peer, obj) => {
    if (peer.exited || !peer.child.stdin.writable) return false;
    peer.child.stdin.write(wireStringify(obj) + '\n');
    return true;
  };

  const deliverTo = (record, target) => {
    const peer = peers.get(target);
    if (!peer || peer.exited) return false;
    if (trace) process.stderr.write(`[hub] ${record.from} -> ${target}: ${MESSAGE_NAMES[record.message]} ${record.requestId}\n`);
    return writeTo(peer, {
      type: 'msg', from: record.from, requestId: record.requestId,
      message: record.message, body: record.body,
    });
  };

  const releaseHeld = (target) => {
    const list = held.get(target);
    if (list?.length) {
      held.delete(target);
      for (const r of list) deliverTo(r, target);
    }
  };

  // Delivers one record to its recipients, applying faults per (record, target).
  const route = (record) => {
    const targets = record.to === null
      ? [...peers.keys()].filter((n) => n !== record.from && !peers.get(n).exited)
      : peers.has(record.to) && !peers.get(record.to).exited ? [record.to] : [];
    if (record.to !== null && !targets.length) record.undeliverable = true;
    for (const target of targets) {
      const fault = faults.find((f) => f.remaining > 0 && f.when(record, target));
      const delivery = {to: target};
      record.deliveries.push(delivery);
      if (!fault) {
        deliverTo(record, target);
        releaseHeld(target);
        continue;
      }
      fault.remaining--;
      fault.hits++;
      delivery.fault = fault.action;
      if (fault.action === 'drop') continue;
      if (fault.action === 'duplicate') {
        deliverTo(record, target);
        deliverTo(record, target);
        releaseHeld(target);
      } else if (fault.action === 'delay') {
        delivery.ms = fault.ms;
        delayedPending++;
        setTimeout(() => {
          delayedPending--;
          deliverTo(record, target);
          touch();
        }, fault.ms);
      } else if (fault.action === 'reorder') {
        if (!held.has(target)) held.set(target, []);
        held.get(target).push(record);
      } else {
        throw new Error(`unknown fault action ${fault.action}`);
      }
    }
    touch();
  };

  const onLine = (peer, line) => {
    if (line.trim() === '') return;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      peer.junk.push(line);
      return;
    }
    switch (obj.type) {
      case 'ready':
        peer.ready = obj;
        peer.onReady?.();
        break;
      case 'msg': {
        const record = {
          seq: ++seq, from: peer.name, to: obj.to ?? null, requestId: obj.requestId ?? null,
          message: obj.message, body: obj.body, deliveries: [],
        };
        records.push(record);
        peer.sent++;
        if (routing) route(record);
        else {
          queue.push(record);
          touch();
        }
        break;
      }
      case 'result':
      case 'error': {
        const pending = peer.pending.get(obj.id);
        if (pending) {
          peer.pending.delete(obj.id);
          pending(obj);
        }
        break;
      }
      case 'log':
        peer.logs.push(obj);
        break;
      default:
        peer.junk.push(line);
    }
  };

  const addPeer = (name, command, args = [], {cwd, env} = {}) =>
    new Promise((resolve, reject) => {
      if (peers.has(name) && !peers.get(name).exited) {
        reject(new Error(`peer ${name} exists`));
        return;
      }
      const child = spawn(command, args, {cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe']});
      const peer = {
        name, command, args, child, pending: new Map(), logs: [], junk: [], stderr: '',
        sent: 0, ready: undefined, exited: false, exitCode: undefined,
      };
      peers.set(name, peer);
      child.stdin.on('error', () => {}); // EPIPE when the peer died; noticed via 'exit'
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d) => {
        peer.stderr += d;
        if (echoStderr) process.stderr.write(`[${name}] ${d}`);
      });
      const rl = createInterface({input: child.stdout, crlfDelay: Infinity});
      rl.on('line', (line) => onLine(peer, line));
      peer.exitPromise = new Promise((res) => {
        child.on('exit', (code, signal) => {
          peer.exited = true;
          peer.exitCode = code ?? signal;
          for (const [, p] of peer.pending) p({type: 'error', message: `peer ${name} exited (${peer.exitCode})`});
          peer.pending.clear();
          clearTimeout(timer);
          if (!peer.ready) reject(new Error(`peer ${name} exited before ready (${peer.exitCode}): ${peer.stderr.slice(0, 2000)}`));
          res(peer.exitCode);
        });
      });
      child.on('error', (e) => reject(e));
      const timer = setTimeout(() => {
        if (!peer.ready) {
          child.kill('SIGKILL');
          reject(new Error(`peer ${name} not ready after ${readyTimeoutMs} ms`));
        }
      }, readyTimeoutMs);
      peer.onReady = () => {
        clearTimeout(timer);
        resolve(peer);
      };
    });

  const addNodePeer = (name, {uniqueId = name, now, timeout, extraArgs = []} = {}) =>
    addPeer(name, process.execPath, [
      PEER_SCRIPT, '--unique-id', uniqueId,
      ...(now !== undefined ? ['--now', String(now)] : []),
      ...(timeout !== undefined ? ['--timeout', String(timeout)] : []),
      ...extraArgs,
    ]);

  // Sends a command; resolves with its (wire-encoded) value, rejects on error/timeout.
  const cmd = (name, op, args = [], extra = {}, {timeoutMs = commandTimeoutMs} = {}) => {
    const peer = peers.get(name);
    if (!peer || peer.exited) return Promise.reject(new Error(`no running peer ${name}`));
    const id = ++cmdId;
    outstanding++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        peer.pending.delete(id);
        outstanding--;
        reject(new Error(`command ${op} to ${name} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      peer.pending.set(id, (answer) => {
        clearTimeout(timer);
        outstanding--;
        if (answer.type === 'result') resolve(answer.value);
        else reject(new Error(`${name}.${op}: ${answer.message}`));
      });
      writeTo(peer, {type: 'cmd', id, op, args, ...extra});
    });
  };

  // Resolves when for `quietMs` no message arrived or was routed, no delayed delivery is
  // pending and (unless commands: false) no command is outstanding. Held (reordered)
  // messages are released when everything else is quiet. Rejects after timeoutMs.
  const idle = async (quietMs = 50, {timeoutMs = 20000, commands = true} = {}) => {
    const start = Date.now();
    for (;;) {
      const busy = delayedPending > 0 || (commands && outstanding > 0);
      const quietFor = Date.now() - lastActivity;
      if (!busy && quietFor >= quietMs) {
        if ([...held.values()].some((l) => l.length)) {
          for (const target of [...held.keys()]) releaseHeld(target);
          touch();
        } else return;
      }
      if (Date.now() - start > timeoutMs) {
        throw new Error(`hub not idle after ${timeoutMs} ms (delayed ${delayedPending}, commands ${outstanding})`);
      }
      await sleep(busy ? 5 : Math.max(1, Math.min(quietMs - quietFor, 10)));
    }
  };

  // Manual routing: with autoRoute off, messages are queued (in arrival order).
  const setAutoRoute = (on) => {
    routing = on;
    if (on) routeAll();
  };
  const routeAll = () => {
    let n = 0;
    while (queue.length) {
      route(queue.shift());
      n++;
    }
    return n;
  };
  const routeNext = (predicate = () => true) => {
    const i = queue.findIndex((r) => predicate(r));
    if (i < 0) return undefined;
    const [record] = queue.splice(i, 1);
    route(record);
    return record;
  };
  // Delivers queued messages one at a time, in order, waiting for new ones to arrive,
  // until one matching `predicate` has been delivered (returned). Deterministic stepping.
  const routeUntil = async (predicate, {timeoutMs = 10000} = {}) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (queue.length) {
        const record = queue.shift();
        route(record);
        if (predicate(record)) return record;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('routeUntil: no matching message');
      await new Promise((r) => {
        arrivalWaiters.push(r);
        setTimeout(r, Math.min(left, 50));
      });
    }
  };

  // Waits (manual routing) until at least n messages are held, so that the next step starts
  // only after a peer's reaction has really reached the hub, however slow the machine.
  const waitQueued = async (n, {timeoutMs = 10000} = {}) => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waitQueued: ${queue.length} of ${n} messages held`);
      await new Promise((r) => {
        arrivalWaiters.push(r);
        setTimeout(r, Math.min(left, 50));
      });
    }
  };

  // Fully serialized routing (use with autoRoute off): deliver the oldest queued message,
  // wait until no new message arrived for quietMs, repeat until the queue stays empty.
  // At any moment only one peer is reacting, so the order is causal and deterministic
  // (as long as quietMs is well above a peer's reaction time and below request timeouts).
  const routeStepwise = async (quietMs = 20, {timeoutMs = 20000} = {}) => {
    const deadline = Date.now() + timeoutMs;
    let delivered = 0;
    for (;;) {
      const quietSince = Date.now();
      while (Date.now() - lastActivity < quietMs || Date.now() - quietSince < quietMs) {
        if (Date.now() > deadline) throw new Error('routeStepwise: timed out');
        await sleep(2);
      }
      if (!queue.length) return delivered;
      route(queue.shift());
      delivered++;
    }
  };

  const addFault = ({when = () => true, match, action, ms = 0, times = Infinity}) => {
    const fault = {when: match ? matcher(match) : when, action, ms, remaining: times, hits: 0};
    faults.push(fault);
    return fault;
  };
  const clearFaults = () => faults.splice(0);

  const mark = (label) => records.push({mark: label});

  // Delivers a hand-made protocol message as if client `from` (which need not be a peer)
  // had sent it; recorded like any other message (with injected: true), faults apply.
  const inject = ({from = 'X', to = null, requestId = null, message, body}) => {
    const record = {seq: ++seq, from, to, requestId, message, body, deliveries: [], injected: true};
    records.push(record);
    route(record);
    return record;
  };

  // Stops one peer: "exit" command, then stdin EOF, then SIGKILL after timeoutMs.
  const stopPeer = async (name, {timeoutMs = 5000} = {}) => {
    const peer = peers.get(name);
    if (!peer || peer.exited) return peer?.exitCode;
    cmd(name, 'exit', [], {}, {timeoutMs}).catch(() => {});
    const t1 = setTimeout(() => peer.child.stdin.end(), timeoutMs / 2);
    const t2 = setTimeout(() => peer.exited || peer.child.kill('SIGKILL'), timeoutMs);
    const code = await peer.exitPromise;
    clearTimeout(t1);
    clearTimeout(t2);
    return code;
  };
  const close = async (opts) => {
    const codes = {};
    await Promise.all([...peers.keys()].map(async (n) => (codes[n] = await stopPeer(n, opts))));
    return codes;
  };

  return {
    peers, records, queue, faults,
    addPeer, addNodePeer, cmd, idle, mark, inject,
    setAutoRoute, routeAll, routeNext, routeUntil, routeStepwise, waitQueued,
    addFault, clearFaults, stopPeer, close,
    normalized: () => normalizeSequence(records),
  };
};
