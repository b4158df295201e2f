// The late joiner of the WebSocket benchmarks, as a TinyBase client (createWsSynchronizer, legacy
// framing): an empty MergeableStore joins URL and syncs until its content hashes are [T, V].
//
//   node bench_joiner.mjs URL T V [TIMEOUT_MS]
//
// Prints `{"ms":<from opening the socket to equal hashes>}` on stdout; exit 1 on timeout.
// The request timeout is long (60 s) so a slow 100k-cell answer is waited for, not retried.
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {performance} from 'node:perf_hooks';

const [url, t, v, timeoutArg] = process.argv.slice(2);
const want = [Number(t), Number(v)];
const timeoutMs = Number(timeoutArg ?? 120000);
if (!url || !Number.isInteger(want[0]) || !Number.isInteger(want[1])) {
  process.stderr.write('usage: node bench_joiner.mjs URL T V [TIMEOUT_MS]\n');
  process.exit(2);
}

const store = createMergeableStore();
const synced = () => {
  const [a, b] = store.getMergeableContentHashes();
  return a === want[0] && b === want[1];
};
const start = performance.now();
let poll;
const done = new Promise((resolve) => {
  // The pull lands in one transaction; the timer is a fallback that also bounds the wait.
  store.addDidFinishTransactionListener(() => synced() && resolve(true));
  poll = setInterval(() => {
    if (synced()) resolve(true);
    else if (performance.now() - start > timeoutMs) resolve(false);
  }, 5);
});
const synchronizer = await createWsSynchronizer(store, new WebSocket(url), 60);
await synchronizer.startSync();
const ok = await done;
const ms = performance.now() - start;
clearInterval(poll);
if (ok) process.stdout.write(`${JSON.stringify({ms})}\n`);
else process.stderr.write(`timed out after ${ms} ms\n`);
await synchronizer.destroy();
process.exit(ok ? 0 : 1);
