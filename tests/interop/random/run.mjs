#!/usr/bin/env node
// Seeded randomized interop between this library's peers and real TinyBase peers (README.md).
//
//   node run.mjs --rust PATH [--mode A|B|AB] [--count N] [--first SEED] [--jobs 2]
//                [--seeds 3,17,..] [--python 'python3 PATH'] [--logs DIR] [--settle-seconds S]
//
// Per seed, a hub (../sync/hub.mjs) bridges 2–4 peers over pipes: this library's (the Rust
// example random_peer, and a Python peer when --python is given) and TinyBase's (tb_peer.mjs).
// Our peers write from several threads, TinyBase peers from timers; edits before, during and
// after startSync; peers restart (new process, with their store content or empty). Once edits
// stop, every peer's content and content hashes must become equal within the settle time.
// Mode A: anti-entropy on at our peers, everybody writes. Mode B: anti-entropy off, only our
// peers write. One JSON line per run; the exit status is 1 if any run did not converge, and
// its hub record, peers' stderr and final states are kept in --logs/<mode>-<seed>/.
import {mkdirSync, writeFileSync} from 'node:fs';
import {join, resolve} from 'node:path';
import {createHub, sameJson, HERE as SYNC_DIR, MESSAGE_NAMES} from '../sync/hub.mjs';

const TB_PEER = join(SYNC_DIR, '..', 'random', 'tb_peer.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Every live hub, so that no peer process outlives this one whatever happens.
const HUBS = new Set();
const killAll = () => {
  for (const hub of HUBS) for (const peer of hub.peers.values()) if (!peer.exited) peer.child.kill('SIGKILL');
};

const parseArgs = (argv) => {
  const o = {mode: 'AB', count: 10, first: 1, jobs: 2, seeds: undefined, rust: undefined, python: undefined,
    logs: join(SYNC_DIR, '..', '..', '..', 'target', 'interop-random'), settleSeconds: undefined, quiet: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--mode') o.mode = next();
    else if (a === '--count') o.count = Number(next());
    else if (a === '--first') o.first = Number(next());
    else if (a === '--jobs') o.jobs = Number(next());
    else if (a === '--seeds') o.seeds = next().split(',').map(Number);
    else if (a === '--rust') o.rust = resolve(next());
    else if (a === '--python') o.python = next().split(' ');
    else if (a === '--logs') o.logs = resolve(next());
    else if (a === '--settle-seconds') o.settleSeconds = Number(next());
    else if (a === '--quiet') o.quiet = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.rust) throw new Error('--rust PATH (the random_peer example) is required');
  if (!/^(A|B|AB)$/.test(o.mode)) throw new Error('--mode is A, B or AB');
  return o;
};

// splitmix32-ish deterministic choices of a run (plans, not timings).
const rngFrom = (seed) => {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) % n;
  };
};

// The plan of one run, from its seed and mode only.
export const planRun = (seed, mode, {python = false} = {}) => {
  const below = rngFrom(seed * 2 + (mode === 'A' ? 0 : 1));
  const ours = 1 + below(2);
  let tbs = mode === 'A' ? 1 + below(2) : below(3);
  if (ours + tbs < 2) tbs = 1;
  const peers = [];
  for (let i = 1; i <= ours; i++) {
    // With --python, the second of our peers is the Python binding's in odd seeds.
    const kind = python && i === 2 && seed % 2 === 1 ? 'python' : 'rust';
    peers.push({name: `R${i}`, kind, ours: true, writes: true});
  }
  for (let i = 1; i <= tbs; i++) peers.push({name: `T${i}`, kind: 'tinybase', ours: false, writes: mode === 'A'});
  const antiEntropy = mode === 'A' ? [0.2, 0.3, 0.4, 0.5][below(4)] : 0;
  // One-way delay of every delivery (in order per link), which widens every pull's window.
  const latencyMs = [0, 1, 3, 6, 10][below(5)];
  // Mode A: a share of the protocol messages is lost until the edits stop (anti-entropy's job).
  const lossPercent = mode === 'A' ? [0, 0, 1, 2, 3][below(5)] : 0;
  const batch = (p, small) => ({
    seed: seed * 100 + below(100),
    ...(p.ours ? {threads: 2 + below(3)} : {chains: 1 + below(2)}),
    count: small ? 2 + below(8) : 30 + below(90),
    maxPauseMs: small ? 0 : 2 + below(18),
    txPercent: 15,
    quietPercent: small ? 0 : 4,
  });
  for (const p of peers) {
    p.before = p.writes && below(10) < 6 ? batch(p, true) : undefined;
    p.startAfterMs = below(600);
    p.during = p.writes ? {afterMs: below(300), ...batch(p, false)} : undefined;
    p.after = p.writes && below(2) ? batch(p, true) : undefined;
    // Some TinyBase peers also write from a mutator listener (see tb_peer.mjs `react`).
    p.react = p.writes && !p.ours && below(2) ? {seed, percent: 5 + below(30)} : undefined;
  }
  // Mode B restarts only our peers, gracefully, with their content: without anti-entropy,
  // nothing repairs changes that a restart leaves at only some peers (README.md).
  const restartable = mode === 'A' ? peers : peers.filter((p) => p.ours);
  const restarts = Array.from({length: below(5)}, () => ({
    afterMs: 200 + below(1500),
    peer: restartable[below(restartable.length)].name,
    // Mode B keeps every restart's content (below).
    keepContent: below(10) < 7 || mode === 'B',
    startAfterMs: below(150),
    crash: below(10) < 3 && mode === 'A',
  }));
  restarts.forEach((r) => {
    const p = peers.find((x) => x.name === r.peer);
    r.writes = p.writes && below(2) ? batch(p, false) : undefined;
  });
  restarts.sort((a, b) => a.afterMs - b.afterMs);
  return {seed, mode, antiEntropy, latencyMs, lossPercent, peers, restarts};
};

const flatten = ([tables, values]) => {
  const cells = new Map();
  for (const [t, table] of Object.entries(tables ?? {})) {
    for (const [r, row] of Object.entries(table)) for (const [c, v] of Object.entries(row)) cells.set(`${t}/${r}/${c}`, v);
  }
  for (const [v, value] of Object.entries(values ?? {})) cells.set(`values/${v}`, value);
  return cells;
};
// [value, hlc] of every cell and value in a (non-encoded) MergeableContent.
const stamps = (mergeable) => {
  const out = new Map();
  const [[tables], [values]] = mergeable;
  for (const [t, [rows]] of Object.entries(tables ?? {})) {
    for (const [r, [cells]] of Object.entries(rows)) for (const [c, [v, hlc]] of Object.entries(cells)) out.set(`${t}/${r}/${c}`, [v, hlc]);
  }
  for (const [v, [value, hlc]] of Object.entries(values ?? {})) out.set(`values/${v}`, [value, hlc]);
  return out;
};

const peerCommand = (p, opts, plan) => {
  const uid = `${p.name}-s${plan.seed}`;
  const common = ['--unique-id', uid, '--timeout', '1'];
  const ae = plan.antiEntropy ? ['--anti-entropy', String(plan.antiEntropy)] : [];
  if (p.kind === 'tinybase') return [process.execPath, [TB_PEER, ...common]];
  if (p.kind === 'python') return [opts.python[0], [...opts.python.slice(1), ...common, ...ae]];
  return [opts.rust, [...common, ...ae]];
};

// Runs one seed; resolves with its result line (never rejects; every peer stopped).
export const runOne = async (seed, mode, opts) => {
  const plan = planRun(seed, mode, {python: !!opts.python});
  const hub = createHub({commandTimeoutMs: 20000});
  HUBS.add(hub);
  const loss = plan.lossPercent ? hub.addFault({when: () => Math.random() * 100 < plan.lossPercent, action: 'drop'}) : undefined;
  if (plan.latencyMs) hub.addFault({action: 'delay', ms: plan.latencyMs});
  const started = Date.now();
  const kinds = {python: '(py)', tinybase: '', rust: ''};
  const result = {seed, mode, peers: plan.peers.map((p) => p.name + kinds[p.kind]).join(','), restarts: plan.restarts.length,
    antiEntropy: plan.antiEntropy, latencyMs: plan.latencyMs, lossPercent: plan.lossPercent, converged: false};
  const errors = [];
  const soft = (promise) => promise.catch((e) => errors.push(String(e.message ?? e)));
  const start = async (p) => {
    const [cmd, args] = peerCommand(p, opts, plan);
    await hub.addPeer(p.name, cmd, args);
    if (p.react) await hub.cmd(p.name, 'react', [p.react]);
  };
  let edits = 0;
  const whileLoading = {};
  const write = (name, spec) =>
    spec
      ? soft(hub.cmd(name, 'writers', [spec]).then((v) => {
        edits += v?.edits ?? 0;
        whileLoading[name] = (whileLoading[name] ?? 0) + (v?.whileLoading ?? 0);
      }))
      : Promise.resolve();
  try {
    await Promise.all(plan.peers.map(start));
    // Edits before startSync.
    await Promise.all(plan.peers.map((p) => write(p.name, p.before)));
    // startSync at staggered times, edits during it, restarts meanwhile.
    const restarted = new Set(); // their restart starts their sync
    const tasks = plan.peers.map(async (p) => {
      const w = p.during ? sleep(p.during.afterMs).then(() => write(p.name, p.during)) : undefined;
      await sleep(p.startAfterMs);
      if (!restarted.has(p.name)) await soft(hub.cmd(p.name, 'startSync'));
      await w;
    });
    // A new process in place of p's, with p's mergeable content or empty; `kill` is a crash.
    // In mode B the synchronizer is destroyed first, so that the content kept holds everything
    // the peer sent.
    const restart = async (p, keepContent, kill) => {
      if (mode === 'B') await soft(hub.cmd(p.name, 'destroy'));
      const content = keepContent ? await hub.cmd(p.name, 'getMergeableContent').catch(() => undefined) : undefined;
      if (kill) {
        hub.peers.get(p.name).child.kill('SIGKILL');
        await hub.peers.get(p.name).exitPromise;
      } else await hub.stopPeer(p.name);
      hub.mark(`restart ${p.name} ${content ? 'with its content' : 'empty'}${kill ? ' after a crash' : ''}`);
      await start(p);
      if (content) await hub.cmd(p.name, 'setMergeableContent', [content]);
    };
    tasks.push((async () => {
      const t0 = Date.now();
      for (const r of plan.restarts) {
        await sleep(Math.max(0, r.afterMs - (Date.now() - t0)));
        const p = plan.peers.find((x) => x.name === r.peer);
        restarted.add(p.name);
        await restart(p, r.keepContent, false);
        const w = write(p.name, r.writes);
        await sleep(r.startAfterMs);
        await soft(hub.cmd(p.name, 'startSync'));
        if (r.crash) {
          // Killed right after its startSync: the others' pulls from it fail (timeouts).
          await restart(p, r.keepContent, true);
          await soft(hub.cmd(p.name, 'startSync'));
        }
        await w;
      }
    })());
    await Promise.all(tasks);
    // Edits after start.
    await Promise.all(plan.peers.map((p) => write(p.name, p.after)));
    hub.mark('edits stopped');
    if (loss) {
      hub.faults.splice(hub.faults.indexOf(loss), 1);
      result.lost = loss.hits;
    }
    result.editMs = Date.now() - started;
    // Bounded wait for every peer's content and hashes to be equal.
    const settleMs = 1000 * (opts.settleSeconds ?? (mode === 'A' ? 10 : 5));
    const deadline = Date.now() + settleMs;
    let states;
    for (;;) {
      states = await Promise.all(plan.peers.map(async (p) => ({
        name: p.name,
        hashes: await hub.cmd(p.name, 'getMergeableContentHashes'),
        content: await hub.cmd(p.name, 'getContent'),
      })));
      if (states.every((s) => sameJson(s.hashes, states[0].hashes) && sameJson(s.content, states[0].content))) {
        result.converged = true;
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    result.settleMs = Date.now() - started - result.editMs;
    result.cells = flatten(states[0].content).size;
    if (!result.converged) result.diff = await explain(hub, plan, states);
  } catch (e) {
    errors.push(String(e.stack ?? e));
    result.error = String(e.message ?? e);
  }
  result.edits = edits;
  result.whileLoading = whileLoading; // transactions committed while the writer's status was Loading
  result.ignored = {};
  for (const [name, peer] of hub.peers) {
    const n = peer.logs.filter((l) => l.event === 'ignoredError').length;
    if (n) result.ignored[name] = n;
  }
  result.messages = hub.records.filter((r) => r.mark === undefined).length;
  result.ms = Date.now() - started;
  if (errors.length) result.errors = errors.slice(0, 5);
  if (!result.converged || opts.keep) keepLogs(hub, plan, result, opts);
  await hub.close({timeoutMs: 3000}).catch(() => {});
  HUBS.delete(hub);
  return result;
};

// The differing cells: each peer's value and HLC, and where the newest HLC went on the wire.
const explain = async (hub, plan, states) => {
  const flat = states.map((s) => flatten(s.content));
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
  const differing = keys.filter((k) => flat.some((m) => !sameJson(m.get(k), flat[0].get(k))));
  const mergeables = await Promise.all(plan.peers.map((p) => hub.cmd(p.name, 'getMergeableContent').then(stamps, () => new Map())));
  const bodies = hub.records.filter((r) => r.mark === undefined).map((r) => [r, JSON.stringify(r.body)]);
  return {
    hashes: Object.fromEntries(states.map((s) => [s.name, s.hashes])),
    cells: differing.slice(0, 20).map((key) => {
      const per = Object.fromEntries(plan.peers.map((p, i) => [p.name, mergeables[i].get(key) ?? null]));
      const newest = Object.values(per).filter(Boolean).map(([, hlc]) => hlc).sort().pop();
      const seen = bodies.filter(([, b]) => newest && b.includes(newest)).map(([r]) =>
        `#${r.seq} ${r.from}->${r.to ?? '*'} ${MESSAGE_NAMES[r.message]} to [${
          r.deliveries.map((d) => d.to + (d.fault === 'drop' ? ' (lost)' : '')).join(',')}]`);
      return {key, per, newest, holders: Object.keys(per).filter((n) => per[n]?.[1] === newest),
        onTheWire: seen.length ? seen.slice(0, 6) : 'never sent'};
    }),
    differingCount: differing.length,
  };
};

const keepLogs = (hub, plan, result, opts) => {
  const dir = join(opts.logs, `${plan.mode}-${plan.seed}`);
  mkdirSync(dir, {recursive: true});
  writeFileSync(join(dir, 'result.json'), JSON.stringify({result, plan}, null, 1));
  writeFileSync(join(dir, 'records.jsonl'), hub.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  for (const [name, peer] of hub.peers) {
    writeFileSync(join(dir, `${name}.stderr`), peer.stderr);
    writeFileSync(join(dir, `${name}.logs.jsonl`), peer.logs.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }
  result.logs = dir;
};

const main = async () => {
  const opts = parseArgs(process.argv.slice(2));
  const seeds = opts.seeds ?? Array.from({length: opts.count}, (_, i) => opts.first + i);
  const jobs = seeds.flatMap((s) => [...opts.mode].map((m) => [s, m]));
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const [seed, mode] = jobs[next++];
      const r = await runOne(seed, mode, opts);
      results.push(r);
      if (!opts.quiet || !r.converged) console.log(JSON.stringify(r));
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({length: Math.max(1, opts.jobs)}, worker));
  const summary = {};
  for (const m of opts.mode) {
    const rs = results.filter((r) => r.mode === m);
    summary[m] = {runs: rs.length, converged: rs.filter((r) => r.converged).length,
      failedSeeds: rs.filter((r) => !r.converged).map((r) => r.seed),
      msPerRun: Math.round(rs.reduce((a, r) => a + r.ms, 0) / Math.max(1, rs.length))};
  }
  console.log(JSON.stringify({summary, wallSeconds: Math.round((Date.now() - t0) / 1000)}));
  process.exitCode = results.every((r) => r.converged) ? 0 : 1;
};

if (import.meta.url === `file://${process.argv[1]}`) {
  process.on('exit', killAll);
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  main().catch((e) => {
    console.error(e.stack ?? e);
    process.exitCode = 2;
  });
}
