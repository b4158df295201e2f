// The command lines of the WebSocket interop helpers (README.md): a JSON object
// `{"id", "op", "args"}` per stdin line, each answered on stdout by
// `{"type": "result", "id", "value"}` or `{"type": "error", "id", "message"}` once `run(op, args)`
// settles (commands run concurrently). `onClose` runs when stdin closes.
import {createInterface} from 'node:readline';

export const serveCommands = (run, out, onClose) =>
  createInterface({input: process.stdin, crlfDelay: Infinity})
    .on('line', (line) => {
      let cmd;
      try {
        cmd = JSON.parse(line);
      } catch {
        return;
      }
      Promise.resolve()
        .then(() => run(cmd.op, cmd.args ?? []))
        .then(
          (value) => out({type: 'result', id: cmd.id, value: value ?? null}),
          (error) => out({type: 'error', id: cmd.id, message: String(error?.message ?? error)}),
        );
    })
    .on('close', onClose);
