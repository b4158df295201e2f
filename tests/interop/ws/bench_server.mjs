// TinyBase's WsServer (createWsServer from tinybase@10.0.1 on the `ws` package) for the WebSocket
// benchmarks (examples/ws_bench.rs, scripts/bench-ws.sh):
//
//   node bench_server.mjs [--persist memory|file] [--data DIR]
//
// Listens on 127.0.0.1 on a free port and prints `listening 127.0.0.1:<port>` on stdout when ready.
// Every room gets a server store (a MergeableStore, client id S) through createPersisterForPath:
//   memory  a custom persister that loads nothing and saves nothing: the room lives in memory, like
//           tinybase-server without --data (the default: the fair comparison of relaying)
//   file    createFilePersister on DIR/<room>.json (TinyBase saves the whole room on every change)
// Stops on SIGTERM/SIGINT or when stdin closes (so a killed benchmark never leaves it behind).
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister, Persists} from 'tinybase/persisters';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};
const persist = option('--persist', 'memory');
const dataDir = option('--data', null);
if (!['memory', 'file'].includes(persist) || (persist === 'file' && !dataDir)) {
  process.stderr.write('usage: node bench_server.mjs [--persist memory|file] [--data DIR]\n');
  process.exit(2);
}
if (dataDir) mkdirSync(dataDir, {recursive: true});

const memoryPersister = (store) =>
  createCustomPersister(
    store,
    async () => undefined,
    async () => {},
    () => null,
    () => {},
    undefined,
    Persists.MergeableStoreOnly,
  );

// Room names come from URL paths: keep file names to a safe alphabet.
const fileName = (pathId) => `${pathId.replace(/[^-0-9A-Za-z_]/g, '_') || '_'}.json`;

const createPersisterForPath = (pathId) => {
  const store = createMergeableStore();
  return persist === 'file'
    ? createFilePersister(store, join(dataDir, fileName(pathId)))
    : memoryPersister(store);
};

const wss = new WebSocketServer({host: '127.0.0.1', port: 0});
// tinybase:3 is S's GetContentHashes timing out when a room opens (the raw benchmark clients
// never answer): expected, so not printed.
const server = createWsServer(wss, createPersisterForPath, (error) => {
  if (!`${error}`.includes('tinybase:3:')) process.stderr.write(`ignored error: ${error}\n`);
});
wss.on('listening', () => {
  const {address, port} = wss.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
