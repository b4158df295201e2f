#!/usr/bin/env node
// Runs synchronizer scenarios (scenarios/*.json) through the hub and writes, per scenario,
// the normalized message sequence and each peer's final state to expected/<name>.json.
//
//   node reference.mjs [--runs N] [--out DIR] [SCENARIO.json ...]
//       all TinyBase peers; runs each scenario N times (default 3), checks that the
//       normalized sequence and final state are identical in every run, writes expected/.
//   node reference.mjs --check [--peer NAME=COMMAND ...] [--runs N] [SCENARIO.json ...]
//       re-runs scenarios (optionally with some peers replaced by another program, e.g.
//       --peer B=../../../target/debug/tb-sync-peer) and compares with expected/ (exit 1 on
//       any difference). The replacement gets the same CLI as peer.mjs appended:
//       --unique-id ID --now MS --timeout SECONDS.
//   --quiet MS overrides every scenario's default idle quiet period (default 60 ms).
//   HUB_TRACE=1 prints every routed message; HUB_DEBUG=1 echoes peer stderr.
//
// Scenario format: README.md ("Scenario files").
import {readFileSync, writeFileSync, mkdirSync, readdirSync} from 'node:fs';
import {join, basename} from 'node:path';
import {createHub, normalizeSequence, createIdNormalizer, matcher, sameJson, HERE} from './hub.mjs';

const DEFAULT_NOW = 1700000000000;

// Deterministic bulk data: {"tables":T,"rows":R,"cells":C,"prefix":"x"} -> setTables argument.
// Cell k (running index over tables, rows, cells in that order) gets, by k % 6:
// 0 integer k, 1 string "<prefix>k", 2 boolean (k % 4 == 2), 3 number k + 0.5,
// 4 null, 5 object {"k":k,"a":[k,"<prefix>"]} when k % 30 == 5, else string "v<k>".
export const generateTables = ({tables = 1, rows = 10, cells = 4, prefix = 'g'}) => {
  const out = {};
  let k = 0;
  for (let t = 0; t < tables; t++) {
    const table = (out[`${prefix}t${t}`] = {});
    for (let r = 0; r < rows; r++) {
      const row = (table[`r${r}`] = {});
      for (let c = 0; c < cells; c++, k++) {
        const kind = k % 6;
        row[`c${c}`] =
          kind === 0 ? k
            : kind === 1 ? `${prefix}${k}`
              : kind === 2 ? k % 4 === 2
                : kind === 3 ? k + 0.5
                  : kind === 4 ? null
                    : k % 30 === 5 ? {k, a: [k, prefix]} : `v${k}`;
      }
    }
  }
  return out;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const withTimeout = (promise, ms, what) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
};

export const runScenario = async (scenario, {peerCommands = {}, quietMs} = {}) => {
  const hub = createHub();
  const now = scenario.now ?? DEFAULT_NOW;
  const timeout = scenario.timeoutSeconds ?? 0.3;
  const quiet = quietMs ?? scenario.quietMs ?? 60;
  const background = [];
  const backgroundErrors = [];
  const recorded = [];

  const startPeer = async (name) => {
    const spec = scenario.peers[name];
    const uniqueId = spec.uniqueId ?? name;
    const pNow = spec.now ?? now;
    const pTimeout = spec.timeoutSeconds ?? timeout;
    if (peerCommands[name]) {
      const [command, ...args] = peerCommands[name];
      await hub.addPeer(name, command, [
        ...args, '--unique-id', uniqueId, '--now', String(pNow), '--timeout', String(pTimeout),
      ]);
    } else {
      await hub.addNodePeer(name, {uniqueId, now: pNow, timeout: pTimeout});
    }
  };

  const runStep = async (step) => {
    if (step.peer !== undefined && step.op !== undefined) {
      const args = step.generate ? [generateTables(step.generate)] : step.args ?? [];
      const extra = step.steps ? {steps: step.steps} : {};
      const p = hub.cmd(step.peer, step.op, args, extra).then(
        (value) => {
          if (step.record) recorded.push({label: step.record, value});
          return value;
        },
        (error) => {
          if (step.expectError) {
            recorded.push({label: step.record ?? `${step.peer}.${step.op}`, error: true});
            return;
          }
          throw error;
        },
      );
      if (step.await === false) {
        background.push(p.catch((e) => backgroundErrors.push(String(e.message))));
      } else {
        await p;
      }
    } else if (step.idle !== undefined) {
      await hub.idle(step.idle === true ? quiet : step.idle);
    } else if (step.wait !== undefined) {
      await sleep(step.wait);
    } else if (step.mark !== undefined) {
      hub.mark(step.mark);
    } else if (step.now !== undefined) {
      const names = step.peer !== undefined ? [step.peer] : [...hub.peers.keys()];
      await Promise.all(names.map((n) => hub.cmd(n, 'now', [step.now])));
    } else if (step.autoRoute !== undefined) {
      hub.setAutoRoute(step.autoRoute);
    } else if (step.routeAll) {
      hub.routeAll();
    } else if (step.routeUntil !== undefined) {
      const m = matcher(step.routeUntil);
      await hub.routeUntil((r) => m(r));
    } else if (step.queued !== undefined) {
      await hub.waitQueued(step.queued);
    } else if (step.routeStepwise !== undefined) {
      await hub.routeStepwise(step.routeStepwise === true ? 20 : step.routeStepwise);
    } else if (step.inject !== undefined) {
      hub.inject(step.inject);
    } else if (step.fault !== undefined) {
      hub.addFault(step.fault);
    } else if (step.clearFaults) {
      hub.clearFaults();
    } else if (step.stopPeer !== undefined) {
      await hub.stopPeer(step.stopPeer);
    } else if (step.startPeer !== undefined) {
      await startPeer(step.startPeer);
    } else if (step.parallel !== undefined) {
      await Promise.all(step.parallel.map(runStep));
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  };

  try {
    for (const name of Object.keys(scenario.peers)) {
      if (scenario.peers[name].late !== true) await startPeer(name);
    }
    for (const step of scenario.steps) await runStep(step);
    await hub.idle(quiet);
    await Promise.all(background);
    hub.setAutoRoute(true);
    await hub.idle(quiet);

    const normalizer = createIdNormalizer();
    const sequence = normalizeSequence(hub.records, normalizer);
    const final = {};
    for (const [name, peer] of hub.peers) {
      if (peer.exited) continue;
      const withContent = scenario.finalContent !== false;
      final[name] = {
        hashes: await hub.cmd(name, 'getMergeableContentHashes'),
        ...(withContent ? {
          content: await hub.cmd(name, 'getContent'),
          encodedMergeableContent: await hub.cmd(name, 'getEncodedMergeableContent'),
        } : {}),
        synchronizerStats: await hub.cmd(name, 'getSynchronizerStats'),
        ignoredErrors: peer.logs
          .filter((l) => l.event === 'ignoredError')
          .map((l) => normalizer.normalizeText(l.error)),
      };
    }
    const hashes = Object.values(final).map((f) => JSON.stringify(f.hashes));
    const countsByType = {};
    for (const m of sequence) if (m.type) countsByType[m.type] = (countsByType[m.type] ?? 0) + 1;
    return {
      sequence,
      messageCount: sequence.filter((m) => m.type).length,
      countsByType,
      final,
      converged: hashes.every((h) => h === hashes[0]),
      recorded,
      backgroundErrors,
    };
  } finally {
    const codes = await hub.close();
    for (const [name, code] of Object.entries(codes)) {
      if (code !== 0 && code !== undefined) {
        process.stderr.write(`peer ${name} exited with ${code}: ${hub.peers.get(name).stderr.slice(0, 2000)}\n`);
      }
    }
  }
};

// First difference between two results (sequence, then final), or undefined.
export const firstDifference = (a, b) => {
  const n = Math.max(a.sequence.length, b.sequence.length);
  for (let i = 0; i < n; i++) {
    if (!sameJson(a.sequence[i], b.sequence[i])) {
      return {at: `sequence[${i}]`, expected: a.sequence[i], actual: b.sequence[i]};
    }
  }
  for (const name of new Set([...Object.keys(a.final), ...Object.keys(b.final)])) {
    const fa = a.final[name];
    const fb = b.final[name];
    for (const key of ['hashes', 'content', 'encodedMergeableContent', 'synchronizerStats', 'ignoredErrors']) {
      if (!sameJson(fa?.[key], fb?.[key])) {
        return {at: `final.${name}.${key}`, expected: fa?.[key], actual: fb?.[key]};
      }
    }
  }
  if (!sameJson(a.recorded, b.recorded)) return {at: 'recorded', expected: a.recorded, actual: b.recorded};
  return undefined;
};

// Top-level members one per line, final state one line per peer and key, one message per
// line, so that diffs of expected files stay readable.
const formatResult = (obj) => {
  const lines = [];
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'final') {
      const peers = Object.entries(value).map(([name, f]) =>
        '  ' + JSON.stringify(name) + ': {\n' +
        Object.entries(f).map(([k, v]) => '   ' + JSON.stringify(k) + ': ' + JSON.stringify(v)).join(',\n') +
        '\n  }');
      lines.push(' "final": {\n' + peers.join(',\n') + '\n }');
    } else if (key === 'sequence') {
      lines.push(' "sequence": [\n' + value.map((m) => '  ' + JSON.stringify(m)).join(',\n') + '\n ]');
    } else {
      lines.push(' ' + JSON.stringify(key) + ': ' + JSON.stringify(value));
    }
  }
  return '{\n' + lines.join(',\n') + '\n}\n';
};

const main = async () => {
  const argv = process.argv.slice(2);
  let runs;
  let out = join(HERE, 'expected');
  let check = false;
  let quietMs;
  const peerCommands = {};
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--out') out = argv[++i];
    else if (a === '--check') check = true;
    else if (a === '--quiet') quietMs = Number(argv[++i]);
    else if (a === '--peer') {
      const [name, ...cmd] = argv[++i].split('=');
      peerCommands[name] = cmd.join('=').split(/\s+/).filter(Boolean);
    } else files.push(a);
  }
  runs ??= check ? 1 : 3;
  if (!files.length) {
    const dir = join(HERE, 'scenarios');
    files.push(...readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f)));
  }
  mkdirSync(out, {recursive: true});
  let failures = 0;
  const summary = [];
  for (const file of files) {
    const name = basename(file, '.json');
    const scenario = JSON.parse(readFileSync(file, 'utf8'));
    const limit = (scenario.maxSeconds ?? 60) * 1000;
    const results = [];
    const started = Date.now();
    try {
      for (let r = 0; r < runs; r++) {
        results.push(await withTimeout(runScenario(scenario, {peerCommands, quietMs}), limit, `${name} run ${r + 1}`));
      }
    } catch (error) {
      failures++;
      console.log(`${name}: FAILED ${error.message}`);
      summary.push({name, error: error.message});
      continue;
    }
    const ms = Date.now() - started;
    const unstable = [];
    for (let r = 1; r < results.length; r++) {
      const d = firstDifference(results[0], results[r]);
      if (d) unstable.push({run: r + 1, ...d});
    }
    const first = results[0];
    const line = {
      name, runs, ms, messages: first.messageCount, countsByType: first.countsByType,
      converged: first.converged, stable: unstable.length === 0,
    };
    if (check) {
      const expected = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8'));
      const diffs = results.map((r) => firstDifference(expected, r)).filter(Boolean);
      line.matchesExpected = diffs.length === 0;
      if (diffs.length) {
        failures++;
        console.log(`${name}: MISMATCH ${JSON.stringify(diffs[0]).slice(0, 3000)}`);
      }
    } else {
      if (unstable.length) {
        failures++;
        console.log(`${name}: UNSTABLE ${JSON.stringify(unstable[0]).slice(0, 3000)}`);
      }
      writeFileSync(join(out, `${name}.json`), formatResult({
        scenario: name,
        description: scenario.description,
        tinybase: '10.0.1',
        runs,
        stable: unstable.length === 0,
        converged: first.converged,
        messageCount: first.messageCount,
        countsByType: first.countsByType,
        final: first.final,
        recorded: first.recorded,
        sequence: first.sequence,
      }));
    }
    if (!first.converged) console.log(`${name}: peers did NOT converge`);
    if (first.backgroundErrors.length) console.log(`${name}: background command errors ${first.backgroundErrors}`);
    console.log(JSON.stringify(line));
    summary.push(line);
  }
  process.exitCode = failures ? 1 : 0;
};

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error);
    process.exit(2);
  });
}
