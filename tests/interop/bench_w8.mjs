// BENCHMARKS.md's W8 on the real TinyBase (npm tinybase@10.0.1): 1,549 stores each write
// concurrently, then one fresh store merges them all. One JSON object per line on stdout:
//
//   node bench_w8.mjs [RUNS]          (RUNS defaults to 3)
//   node bench_w8.mjs --fixed NOW     one round with every clock fixed at NOW (ms), printing
//                                     the merged store's `v`, hashes and content (for the Rust
//                                     side's equality check)
//
// {"workload":"W8","n":1549,"runs":R,"min":..,"median":..,"max":..,"unit":"ms"}
//   ms        the whole: create 1,549 createMergeableStore('s{i}') (distinct ids), each
//             setValue('v', i) and setCell('t', 'r', 'c', i), each store's wire-form content
//             (store.__[1](), as bench.mjs's W4) to JSON text: the update; then a fresh store
//             applies all 1,549 (JSON.parse + __[4], as bench.mjs's W5)
//   apply ms  the apply phase alone
//   bytes     the updates' total UTF-8 bytes
// After each round the merged `v` is checked against the last-writer rule (the highest HLC
// of the 1,549 writes of `v` wins). The script re-executes itself with --expose-gc when
// global.gc is unavailable.
import {spawnSync} from 'node:child_process';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';

if (typeof global.gc !== 'function') {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {stdio: 'inherit'},
  );
  process.exit(child.status ?? 1);
}

const {createMergeableStore} = await import('tinybase');

const STORES = 1549;
const fixed = process.argv[2] === '--fixed';
const RUNS = fixed ? 1 : Number(process.argv[2] ?? 3);
const NOW = fixed ? Number(process.argv[3]) : undefined;
if (!Number.isInteger(RUNS) || RUNS <= 0 || (fixed && !Number.isFinite(NOW))) {
  process.stderr.write('usage: node bench_w8.mjs [RUNS] | --fixed NOW_MS\n');
  process.exit(2);
}
const getNow = fixed ? () => NOW : undefined;

// One round; returns the merged store and the figures.
const round = () => {
  const t0 = performance.now();
  const updates = [];
  let bytes = 0;
  // The highest HLC among the writes of `v` (HLC strings order as their stamps).
  let winner = {hlc: '', value: undefined};
  for (let i = 0; i < STORES; i++) {
    const store = createMergeableStore(`s${i}`, getNow);
    store.setValue('v', i);
    store.setCell('t', 'r', 'c', i);
    const text = JSON.stringify(store.__[1]());
    updates.push(text);
    bytes += Buffer.byteLength(text, 'utf8');
  }
  const t1 = performance.now();
  const merged = createMergeableStore('merged', getNow);
  for (const text of updates) merged.__[4](JSON.parse(text));
  const t2 = performance.now();
  for (const text of updates) {
    const [value, hlc] = JSON.parse(text)[1][0].v;
    if (hlc > winner.hlc) winner = {hlc, value};
  }
  if (merged.getValue('v') !== winner.value) {
    throw new Error(`W8: merged v is ${merged.getValue('v')}, the last writer wrote ${winner.value}`);
  }
  return {merged, ms: t2 - t0, applyMs: t2 - t1, bytes};
};

if (fixed) {
  const {merged} = round();
  process.stdout.write(
    JSON.stringify({
      v: merged.getValue('v'),
      cell: merged.getCell('t', 'r', 'c'),
      hashes: merged.getMergeableContentHashes(),
      content: JSON.stringify(merged.__[1]()),
    }) + '\n',
  );
  process.exit(0);
}

const samples = {ms: [], 'apply ms': [], bytes: []};
for (let run = 1; run <= RUNS; run++) {
  global.gc();
  const {ms, applyMs, bytes} = round();
  samples.ms.push(ms);
  samples['apply ms'].push(applyMs);
  samples.bytes.push(bytes);
  process.stderr.write(`[bench W8] run ${run}: ${ms.toFixed(1)} ms (apply ${applyMs.toFixed(1)} ms), ${bytes} bytes\n`);
}
const roundNumber = (x) => (Number.isInteger(x) ? x : Number(x.toPrecision(6)));
for (const [unit, values] of Object.entries(samples)) {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length % 2
    ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  process.stdout.write(
    JSON.stringify({
      workload: 'W8',
      n: STORES,
      runs: sorted.length,
      min: roundNumber(sorted[0]),
      median: roundNumber(mid),
      max: roundNumber(sorted[sorted.length - 1]),
      unit,
    }) + '\n',
  );
}
process.exit(0);
