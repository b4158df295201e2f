// TinyBase's own WebSocket fragmenting and reassembly, for tests/ws_codec.rs (the Rust codec must
// cut the same pieces and accept what TinyBase sends, and TinyBase must accept what it sends).
// A legacy createWsSynchronizer runs over a fake, always-open socket whose send() records frames.
//
//   node ws_codec.mjs send      -> {"cases":[{"fragmentSize":n,"frames":[...]}, ...]} on stdout:
//                                  the frames TinyBase sent for content with non-ASCII and emoji
//                                  characters at fragment boundaries, for several fragment sizes
//   node ws_codec.mjs receive   <- a JSON array of scenarios on stdin, each an array of frames
//                                  (client ids as a server delivers them) fed in that order to a
//                                  fresh synchronizer
//                               -> {"results":[{"received":[[from, requestId, message, bodyJson]...],
//                                               "closed":[code, reason] | null}, ...]}
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';

class FakeSocket {
  constructor() {
    this.readyState = 1;
    this.OPEN = 1;
    this.bufferedAmount = 0;
    this.sent = [];
    this.listeners = {};
    this.closed = null;
  }
  addEventListener(event, listener) {
    (this.listeners[event] ??= []).push(listener);
  }
  removeEventListener(event, listener) {
    this.listeners[event] = (this.listeners[event] ?? []).filter((l) => l != listener);
  }
  send(frame) {
    this.sent.push(frame);
  }
  close(code, reason) {
    this.closed ??= [code ?? null, reason ?? null];
  }
  deliver(data) {
    for (const listener of this.listeners.message ?? []) listener({data});
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
// Undefined travels as the U+FFFC marker, as on the wire.
const wire = (body) => JSON.stringify(body, (_k, v) => (v === undefined ? '\uFFFC' : v));

const VALUES = [
  'a d\u00f6g \u2603 \u{1F600} with a long name',
  '\u{1F600}'.repeat(21),
  'x\u{1F600}'.repeat(13),
  'xy\u00e9\u{1F600}\u2603'.repeat(9),
  '\u2603\u00e9'.repeat(17),
  // Long enough that ceil(utf8len / 1000) + 3 outgrows small fragment sizes.
  'z\u{1F600}\u00e9\u2603'.repeat(700),
];
const SIZES = [1, 3, 4, 5, 6, 7, 9, 32, 100];

const send = async () => {
  const cases = [];
  for (const fragmentSize of SIZES) {
    const socket = new FakeSocket();
    const store = createMergeableStore('codec', () => 1700000000000);
    const sync = await createWsSynchronizer(store, socket, 1, undefined, undefined, undefined, fragmentSize);
    await sync.startAutoSave();
    VALUES.forEach((value, i) => store.setCell('t', 'r' + i, 'c', value));
    await tick();
    await sync.destroy();
    cases.push({fragmentSize, frames: socket.sent});
  }
  process.stdout.write(JSON.stringify({cases}));
};

const receive = async () => {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const results = [];
  for (const frames of JSON.parse(input)) {
    const socket = new FakeSocket();
    const received = [];
    const store = createMergeableStore('codec-receiver', () => 1700000000000);
    const sync = await createWsSynchronizer(store, socket, 1, undefined, (from, requestId, message, body) =>
      received.push([from, requestId, message, wire(body)]),
    );
    for (const frame of frames) socket.deliver(frame);
    await sync.destroy();
    // destroy() closes the socket without a code: only a close with a code is the decoder's.
    results.push({received, closed: socket.closed?.[0] == null ? null : socket.closed});
  }
  process.stdout.write(JSON.stringify({results}));
};

await (process.argv[2] == 'receive' ? receive() : send());
