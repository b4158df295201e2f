#!/usr/bin/env node
// TinyBase's (10.0.1) WebSocket server on the `ws` package: the reference the interop tests
// (README.md) run our client against.
//
//   node tb_server.mjs [--port 0] [--data DIR] [--fragment-size N] [--request-timeout SECONDS]
//
// Listens on 127.0.0.1 (port 0: a free one) and prints `listening PORT` once ready. With --data,
// every room has a server store (client id `S`) persisted by TinyBase's file persister to
// DIR/<encodeURIComponent(room)>.json; without it the server is a pure relay.
// Stdin takes the command lines of commands.mjs:
//   state [room]  -> {hashes, content} of the room's server store (null if it has none)
//   stats         -> {paths, clients, pathIds}
//   exit          -> destroys the server, then exits
// Ignored errors are logged on stderr. Stdin closing or SIGTERM stops the server.
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
import {serveCommands} from './commands.mjs';

const argv = process.argv.slice(2);
const opt = (name, d) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : d);
const port = Number(opt('--port', 0));
const data = opt('--data');
const fragmentSize = opt('--fragment-size') === undefined ? undefined : Number(opt('--fragment-size'));
const requestTimeout = Number(opt('--request-timeout', 1));

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const onIgnoredError = (error) => process.stderr.write(`tb_server: ignored ${error?.message ?? error}\n`);

// The server stores by room, as the persister callback hands them over.
const stores = new Map();
if (data) mkdirSync(data, {recursive: true});
const createPersisterForPath = data
  ? (pathId) => {
      const store = createMergeableStore();
      const persister = createFilePersister(store, join(data, `${encodeURIComponent(pathId)}.json`), onIgnoredError);
      return [persister, (s) => stores.set(pathId, s)];
    }
  : undefined;

const wss = new WebSocketServer({host: '127.0.0.1', port});
const server = createWsServer(wss, createPersisterForPath, onIgnoredError, requestTimeout, fragmentSize);
server.addPathIdsListener((_server, pathId, addedOrRemoved) => {
  if (addedOrRemoved < 0) stores.delete(pathId);
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.destroy();
  process.exit(0);
};

const run = (op, args) => {
  switch (op) {
    case 'state': {
      const store = stores.get(args[0] ?? '');
      return store ? {hashes: store.getMergeableContentHashes(), content: store.getContent()} : null;
    }
    case 'stats':
      return {...server.getStats(), pathIds: server.getPathIds()};
    case 'exit':
      stop();
      return null;
    default:
      throw new Error(`unknown op ${op}`);
  }
};

wss.on('listening', () => {
  // The readiness line, as tinybase-server prints one.
  process.stdout.write(`listening ${wss.address().port}\n`);
});
wss.on('error', (error) => {
  process.stderr.write(`tb_server: ${error.message}\n`);
  process.exit(1);
});
serveCommands(run, out, stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.on('error', () => process.exit(0));
