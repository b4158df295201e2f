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
// The time the hashes were first equal: what follows (the joiner's own ContentHashes broadcast,
// anything the room then asks it) is not part of receiving the room.
let reached;
const done = new Promise((resolve) => {
  const check = () => {
    if (reached === undefined && synced()) reached = performance.now();
    if (reached !== undefined) resolve(true);
  };
  // The pull lands in one transaction; the timer is a fallback that also bounds the wait.
  store.addDidFinishTransactionListener(check);
  poll = setInterval(() => {
    check();
    if (reached === undefined && performance.now() - start > timeoutMs) resolve(false);
  }, 5);
});
// BENCH_TRACE=1: one stderr line per message received (ms since start, message type, bytes).
const trace = process.env.BENCH_TRACE
  ? (from, requestId, message, body) =>
      process.stderr.write(
        `${(performance.now() - start).toFixed(1)} ms: from ${from} ${requestId} message ${message}, ` +
          `${JSON.stringify(body)?.length ?? 0} bytes ${JSON.stringify(body)?.slice(0, 300)}\n`,
      )
  : undefined;
const synchronizer = await createWsSynchronizer(store, new WebSocket(url), 60, undefined, trace);
await synchronizer.startSync();
const ok = await done;
const ms = (reached ?? performance.now()) - start;
clearInterval(poll);
if (ok) process.stdout.write(`${JSON.stringify({ms})}\n`);
else process.stderr.write(`timed out after ${ms} ms\n`);
await synchronizer.destroy();
process.exit(ok ? 0 : 1);
