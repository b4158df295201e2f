// Runs the BENCHMARKS.md workloads W1-W7 on the real TinyBase (npm tinybase@10.0.1)
// and prints one JSON object per line on stdout:
//
//   node bench.mjs N [RUNS]        (RUNS defaults to 3)
//   BENCH_SKIP="W5,W6" node bench.mjs 1000000 1
//
// {"workload":"W1","n":N,"runs":R,"min":..,"median":..,"max":..,"unit":"cells/s"}
// Workloads with several measures print one line per measure (W4: ms and bytes;
// W6: ms, messages and bytes).
//
// Data: cell i (0 <= i < N) is table t{i%10}, row r{floor(i/10)}, cell c{i%3},
// value "v{i}".
//   W1 cells/s   set all N cells in one transaction on a fresh createMergeableStore('bench')
//   W2 calls/s   10,000 single setCell calls on the W1 store (cell i of the data shape,
//                value "w{i}"); run last in each round, so W4-W7 see exactly the W1 data
//                (W1's and W2's ids and values are made before their clocks start, on
//                every side: the calls are measured, not the formatting of their arguments)
//   W3 bytes/cell heap delta (process.memoryUsage().heapUsed, after global.gc()) around W1
//   W4 ms, bytes getMergeableContent in wire form (store.__[1]()) + JSON.stringify
//   W5 ms        JSON.parse of that text + applyMergeableChanges (encoded, __[4]) into a fresh store
//   W6 ms, messages, bytes  A = the W1 store, B = empty; createLocalSynchronizer on both,
//                startSync on both, until getMergeableContentHashes are equal. Messages
//                and bytes (JSON of [to, requestId, message, body] in wire form, UTF-8)
//                are counted with the onSend hook of both synchronizers.
//   W7 ms        median latency over 100 single setCell calls on A until B's cell
//                listener sees the new value (after W6)
// Progress goes to stderr. The script re-executes itself with --expose-gc (and a
// larger heap) when global.gc is unavailable.
import {spawnSync} from 'node:child_process';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';

if (typeof global.gc !== 'function') {
  const flags = ['--expose-gc'];
  if (!process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) {
    flags.push('--max-old-space-size=12288');
  }
  const child = spawnSync(
    process.execPath,
    [...flags, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {stdio: 'inherit'},
  );
  process.exit(child.status ?? 1);
}

const {createMergeableStore} = await import('tinybase');
const {createLocalSynchronizer} = await import('tinybase/synchronizers/synchronizer-local');

const N = Number(process.argv[2] ?? 10000);
const RUNS = Number(process.argv[3] ?? 3);
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(RUNS) || RUNS <= 0) {
  process.stderr.write('usage: node bench.mjs N [RUNS]   (env BENCH_SKIP="W5,W6")\n');
  process.exit(2);
}
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
const W2_CALLS = 10000;
const W7_CALLS = 100;
const SYNC_TIMEOUT_MS = Number(process.env.BENCH_SYNC_TIMEOUT_MS ?? 600000);

const log = (text) => process.stderr.write(`[bench N=${N}] ${text}\n`);
const gc = () => {
  global.gc();
  global.gc();
};
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const wireJson = (value) =>
  JSON.stringify(value, (_k, v) => (v === undefined ? '\uFFFC' : v));
const sameHashes = (a, b) => {
  const [x, y] = [a.getMergeableContentHashes(), b.getMergeableContentHashes()];
  return x[0] === y[0] && x[1] === y[1];
};

// samples[workload + unit] = [numbers...]
const samples = new Map();
const record = (workload, unit, value) => {
  if (SKIP.has(workload)) return;
  const key = `${workload}\t${unit}`;
  if (!samples.has(key)) samples.set(key, []);
  samples.get(key).push(value);
};

// Cell i's ids and value (prefix + i), for i < n.
const prepare = (n, prefix) =>
  Array.from({length: n}, (_, i) => [`t${i % 10}`, `r${Math.floor(i / 10)}`, `c${i % 3}`, `${prefix}${i}`]);

const runOnce = async (run) => {
  // W1 + W3
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  // The ids and values are made before the clock starts (W3 still counts the strings the
  // store keeps: the arrays are dropped before the heap is read).
  let cells = prepare(N, 'v');
  let t0 = performance.now();
  const store = createMergeableStore('bench');
  store.transaction(() => {
    for (const [t, r, c, v] of cells) {
      store.setCell(t, r, c, v);
    }
  });
  let ms = performance.now() - t0;
  record('W1', 'cells/s', N / (ms / 1000));
  cells = null;
  gc();
  record('W3', 'bytes/cell', (process.memoryUsage().heapUsed - heapBefore) / N);
  log(`run ${run}: W1 ${ms.toFixed(0)} ms`);

  // W4
  let text;
  if (!SKIP.has('W4') || !SKIP.has('W5')) {
    t0 = performance.now();
    text = JSON.stringify(store.__[1]());
    ms = performance.now() - t0;
    record('W4', 'ms', ms);
    record('W4', 'bytes', Buffer.byteLength(text, 'utf8'));
    log(`run ${run}: W4 ${ms.toFixed(0)} ms, ${Buffer.byteLength(text, 'utf8')} bytes`);
  }

  // W5
  if (!SKIP.has('W5')) {
    const fresh = createMergeableStore('bench-w5');
    t0 = performance.now();
    fresh.__[4](JSON.parse(text));
    ms = performance.now() - t0;
    if (!sameHashes(store, fresh)) throw new Error('W5: hashes differ after applying');
    record('W5', 'ms', ms);
    log(`run ${run}: W5 ${ms.toFixed(0)} ms`);
  }
  text = undefined;

  // W6 + W7
  if (!SKIP.has('W6') || !SKIP.has('W7')) {
    const storeB = createMergeableStore('bench-b');
    let messages = 0;
    let bytes = 0;
    const onSend = (toClientId, requestId, message, body) => {
      messages++;
      bytes += Buffer.byteLength(wireJson([toClientId, requestId, message, body]), 'utf8');
    };
    const syncA = createLocalSynchronizer(store, onSend);
    const syncB = createLocalSynchronizer(storeB, onSend);
    try {
      t0 = performance.now();
      await Promise.all([syncA.startSync(), syncB.startSync()]);
      while (!sameHashes(store, storeB)) {
        if (performance.now() - t0 > SYNC_TIMEOUT_MS) throw new Error('W6: sync timed out');
        await tick();
      }
      ms = performance.now() - t0;
      record('W6', 'ms', ms);
      record('W6', 'messages', messages);
      record('W6', 'bytes', bytes);
      log(`run ${run}: W6 ${ms.toFixed(0)} ms, ${messages} messages, ${bytes} bytes`);

      if (!SKIP.has('W7')) {
        // let the startSync traffic settle before timing single changes
        for (let i = 0; i < 20; i++) await tick();
        const latencies = [];
        let waiting = null;
        const listenerId = storeB.addCellListener('t0', 'r0', 'c0', (_s, _t, _r, _c, newCell) => {
          if (waiting && newCell === waiting.value) {
            const resolve = waiting.resolve;
            waiting = null;
            resolve();
          }
        });
        for (let k = 0; k < W7_CALLS; k++) {
          const value = `w7-${run}-${k}`;
          const seen = new Promise((resolve) => (waiting = {value, resolve}));
          const start = performance.now();
          store.setCell('t0', 'r0', 'c0', value);
          await Promise.race([
            seen,
            new Promise((_, reject) => setTimeout(() => reject(new Error('W7: change not seen')), SYNC_TIMEOUT_MS)),
          ]);
          latencies.push(performance.now() - start);
        }
        storeB.delListener(listenerId);
        latencies.sort((x, y) => x - y);
        const median = latencies[Math.floor(latencies.length / 2)];
        record('W7', 'ms', median);
        log(`run ${run}: W7 median ${median.toFixed(2)} ms`);
      }
    } finally {
      await syncA.destroy();
      await syncB.destroy();
    }
  }

  // W2 (last, so that W4-W7 see exactly the W1 data)
  if (!SKIP.has('W2')) {
    const calls = prepare(W2_CALLS, 'w');
    t0 = performance.now();
    for (const [t, r, c, v] of calls) {
      store.setCell(t, r, c, v);
    }
    ms = performance.now() - t0;
    record('W2', 'calls/s', W2_CALLS / (ms / 1000));
    log(`run ${run}: W2 ${ms.toFixed(0)} ms`);
  }
};

const ORDER = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7'];
for (let run = 1; run <= RUNS; run++) {
  await runOnce(run);
  // let the synchronizers' pending timers run out so the next W3 starts clean
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc();
}
const rows = [...samples.entries()].sort(
  ([a], [b]) => ORDER.indexOf(a.split('\t')[0]) - ORDER.indexOf(b.split('\t')[0]),
);
for (const [key, values] of rows) {
  const [workload, unit] = key.split('\t');
  const sorted = [...values].sort((x, y) => x - y);
  const round = (x) => (Number.isInteger(x) ? x : Number(x.toPrecision(6)));
  process.stdout.write(
    JSON.stringify({
      workload,
      n: N,
      runs: sorted.length,
      min: round(sorted[0]),
      median: round(
        sorted.length % 2
          ? sorted[(sorted.length - 1) / 2]
          : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2,
      ),
      max: round(sorted[sorted.length - 1]),
      unit,
    }) + '\n',
  );
}
process.exit(0);
