// W11 of BENCHMARKS.md on the real TinyBase (npm tinybase@10.0.1): its file persister saving and
// loading the W1 store (cell i of N: table t{i%10}, row r{floor(i/10)}, cell c{i%3}, value
// "v{i}", all set in one transaction on createMergeableStore('bench')). Run by
// examples/persist_bench.rs (scripts/bench-persist.sh) beside ours, in the same run.
//
//   node bench.mjs DIR N [RUNS]
//
// Prints one JSON line per measure on stdout:
// {"workload":"file save","n":N,"runs":R,"min":..,"median":..,"max":..,"unit":"ms"}
//   file save  ms  persister.save() of the W1 store to DIR/tinybase-N.json (TinyBase writes a
//                  temporary file and renames it; it does not fsync)
//   file load  ms  persister.load() of that file into a fresh createMergeableStore
//   file bytes     the file's size
// Progress goes to stderr. Re-executes itself with --expose-gc (and a larger heap) when needed.
import {spawnSync} from 'node:child_process';
import {statSync, rmSync} from 'node:fs';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';

if (typeof global.gc !== 'function') {
  const flags = ['--expose-gc'];
  if (!process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) flags.push('--max-old-space-size=12288');
  const child = spawnSync(process.execPath, [...flags, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(child.status ?? 1);
}

const {createMergeableStore} = await import('tinybase');
const {createFilePersister} = await import('tinybase/persisters/persister-file');

const [dir, nArg, runsArg] = process.argv.slice(2);
const N = Number(nArg);
const RUNS = Number(runsArg ?? 3);
if (!dir || !Number.isInteger(N) || N <= 0 || !Number.isInteger(RUNS) || RUNS <= 0) {
  process.stderr.write('usage: node bench.mjs DIR N [RUNS]\n');
  process.exit(2);
}
const log = (text) => process.stderr.write(`[tinybase W11 N=${N}] ${text}\n`);
const gc = () => {
  global.gc();
  global.gc();
};

const store = createMergeableStore('bench');
store.transaction(() => {
  for (let i = 0; i < N; i++) store.setCell(`t${i % 10}`, `r${Math.floor(i / 10)}`, `c${i % 3}`, `v${i}`);
});
const path = join(dir, `tinybase-${N}.json`);
const samples = {save: [], load: []};
let bytes = 0;
for (let run = 1; run <= RUNS; run++) {
  gc();
  const saver = createFilePersister(store, path);
  let t0 = performance.now();
  await saver.save();
  samples.save.push(performance.now() - t0);
  await saver.destroy();
  bytes = statSync(path).size;
  const fresh = createMergeableStore('fresh');
  const loader = createFilePersister(fresh, path);
  gc();
  t0 = performance.now();
  await loader.load();
  samples.load.push(performance.now() - t0);
  await loader.destroy();
  const [a, b] = [fresh.getMergeableContentHashes(), store.getMergeableContentHashes()];
  if (a[0] !== b[0] || a[1] !== b[1]) throw new Error('the loaded store differs from the saved one');
  log(`run ${run}: save ${samples.save.at(-1).toFixed(1)} ms, load ${samples.load.at(-1).toFixed(1)} ms`);
}
rmSync(path, {force: true});
const stats = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return {min: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s.at(-1)};
};
const print = (workload, values, unit) =>
  process.stdout.write(JSON.stringify({workload, n: N, runs: RUNS, ...stats(values), unit}) + '\n');
print('file save', samples.save, 'ms');
print('file load', samples.load, 'ms');
print('file bytes', [bytes], 'bytes');
