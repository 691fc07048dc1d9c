/**
 * End-to-end benchmark (the seed article's experiment through the whole system): 1000 jobs
 * against an emulator that answers every call after 1 s, no limits, file storage. Wall time is
 * from the first publish to the last result event; CPU seconds and peak RSS are the node
 * process's own (read from /proc). Side by side in one run, against the same emulator:
 *   - `asyncio`: the seed's Python asyncio + aiohttp program (fetches only, no storage, no bus);
 *   - `undici`:  1000 concurrent undici requests from Node (fetches only): the floor for Node.
 *
 * Usage: npm run bench:e2e [-- --jobs 1000 --latency 1000 --trials 3 --shards 1 --out FILE]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { request } from 'undici';
import { connectNats } from '../../src/bus/nats-connection.ts';
import { publishJob } from '../../src/client/jobs.ts';
import type { ResultEvent } from '../../src/messages/result.ts';
import { freePort, startLocalNats } from '../../src/runtime/local-nats.ts';
import { median, procCpuSeconds, procPeakRssMiB } from './proc.ts';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    latency: { type: 'string', default: '1000' },
    trials: { type: 'string', default: '3' },
    // Where the node's file: storage goes. These VMs' ext4 disk (virtio, mounted with discard)
    // costs anywhere from 0.1 to 4 CPU-seconds in the kernel for the same 1000 new folders, from
    // one minute to the next; /dev/shm (tmpfs) measures Prism without it.
    'data-dir': { type: 'string', default: tmpdir() },
    // node.shards of the Prism node (README, "Shards").
    shards: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const JOBS = Number(args.jobs);
const LATENCY_MS = Number(args.latency);
const TRIALS = Number(args.trials);
const SHARDS = Number(args.shards);

interface Trial {
  wallSeconds: number;
  /** When the first result arrived (Prism only). */
  firstSeconds?: number;
  /** When the last job's first call started, by the node's clock (Prism only): the dispatch spread. */
  lastStartSeconds?: number;
  cpuSeconds: number;
  peakRssMiB: number;
  ok: number;
}

/** A child process that has printed `ready` on its stdout (or fails with what it printed). */
async function startProcess(command: string, argv: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  process.once('exit', () => child.kill('SIGKILL'));
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (seen.includes(ready)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code}:\n${seen.slice(-2000)}`)));
  });
  // Keep draining its output so it never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

async function emulatorCalls(url: string): Promise<number> {
  const response = await request(`${url}/__emulator/stats`);
  return ((await response.body.json()) as { calls: number }).calls;
}

/** One trial of the whole system: a fresh node process, JOBS jobs, wait for their results. */
async function prismTrial(natsUrl: string, emulatorUrl: string, trial: number): Promise<Trial> {
  const dir = mkdtempSync(join(args['data-dir'], 'prism-bench-e2e-'));
  const host = new URL(emulatorUrl).host;
  const config = {
    node: { concurrency: Math.max(1024, JOBS), metricsInterval: '60s', ledger: 'memory', shards: SHARDS },
    sources: { adjust: { allowHosts: [host], apis: { report: {} } } },
  };
  writeFileSync(join(dir, 'prism.json'), JSON.stringify(config));
  const node = await startProcess(
    process.execPath,
    [
      // e.g. PRISM_BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the node.
      ...(process.env.PRISM_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      ...NODE_FLAGS,
      join(root, 'src/cli/main.ts'),
      'node',
      '--config',
      join(dir, 'prism.json'),
      '--nats',
      natsUrl,
      '--storage',
      `file:${join(dir, 'data')}`,
      '--name',
      `bench-${trial}`,
    ],
    SHARDS > 1 ? '"sharded node started"' : '"node started"',
  );
  const nc = await connectNats({ url: natsUrl, name: 'bench-e2e' });
  const js = jetstream(nc);
  let ok = 0;
  let first = 0;
  let lastStart = 0;
  let done!: () => void;
  const allDone = new Promise<void>((resolve) => (done = resolve));
  const ids = new Set<string>();
  nc.subscribe('prism.results.>', {
    callback: (_error, message) => {
      const event = message.json<ResultEvent>();
      if (!ids.delete(event.id)) return;
      first ||= performance.now();
      lastStart = Math.max(lastStart, Date.parse(event.startedAt));
      if (event.status === 'ok') ok++;
      if (ids.size === 0) done();
    },
  });
  await nc.flush();
  const cpuBefore = procCpuSeconds(node.pid!);
  const startedAtMs = Date.now();
  const started = performance.now();
  const publishes: Array<Promise<string>> = [];
  for (let i = 0; i < JOBS; i++) {
    const id = `bench-${trial}-${i}`;
    ids.add(id);
    publishes.push(
      publishJob(js, {
        id,
        source: 'adjust',
        api: 'report',
        account: `acc-${i}`,
        request: { url: `${emulatorUrl}/adjust/acc-${i}/report` },
      }),
    );
  }
  await Promise.all(publishes);
  await allDone;
  const wallSeconds = (performance.now() - started) / 1000;
  const cpuSeconds = procCpuSeconds(node.pid!) - cpuBefore;
  const peakRssMiB = procPeakRssMiB(node.pid!);
  await nc.close();
  await stopProcess(node);
  rmSync(dir, { recursive: true, force: true });
  return {
    wallSeconds,
    firstSeconds: (first - started) / 1000,
    lastStartSeconds: (lastStart - startedAtMs) / 1000,
    cpuSeconds,
    peakRssMiB,
    ok,
  };
}

/** JOBS concurrent undici requests from a fresh Node process: the fetch floor for Node. */
function undiciTrial(emulatorUrl: string): Trial {
  const child = spawnSync(
    process.execPath,
    [join(root, 'bench/e2e/undici-fetch.ts'), emulatorUrl, String(JOBS)],
    { encoding: 'utf8' },
  );
  if (child.status !== 0) throw new Error(`undici-fetch failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Trial;
}

/** The seed's asyncio + aiohttp program (Debian: python3-aiohttp), or undefined when missing. */
function asyncioTrial(emulatorUrl: string): Trial | undefined {
  // Debian's python3-aiohttp belongs to /usr/bin/python3, which a pyenv on the PATH would hide.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const child = spawnSync(python, [join(root, 'bench/e2e/asyncio_fetch.py'), emulatorUrl, String(JOBS)], {
    encoding: 'utf8',
  });
  if (child.status !== 0) {
    console.error(`asyncio peer skipped (apt-get install python3-aiohttp): ${child.stderr.trim()}`);
    return undefined;
  }
  return JSON.parse(child.stdout) as Trial;
}

function row(name: string, trials: Trial[]): string {
  const wall = trials.map((t) => t.wallSeconds);
  const fmt = (n: number, digits = 2) => n.toFixed(digits);
  const firsts = trials.flatMap((t) => (t.firstSeconds !== undefined ? [t.firstSeconds] : []));
  const firstResult = firsts.length > 0 ? fmt(median(firsts)) : '–';
  const starts = trials.flatMap((t) => (t.lastStartSeconds !== undefined ? [t.lastStartSeconds] : []));
  const lastStart = starts.length > 0 ? fmt(median(starts)) : '–';
  return `| ${name} | ${lastStart} | ${firstResult} | ${fmt(median(wall))} | ${fmt(Math.min(...wall))} | ${fmt(median(trials.map((t) => t.cpuSeconds)))} | ${fmt(median(trials.map((t) => t.peakRssMiB)), 0)} | ${trials.map((t) => t.ok).join(', ')} |`;
}

async function main(): Promise<void> {
  const nats = await startLocalNats();
  const port = await freePort();
  const emulatorUrl = `http://127.0.0.1:${port}`;
  const emulator = await startProcess(
    process.execPath,
    [join(root, 'src/cli/main.ts'), 'mock-api', '--port', String(port), '--latency', String(LATENCY_MS)],
    'listening on',
  );
  const prism: Trial[] = [];
  const undici: Trial[] = [];
  const asyncio: Trial[] = [];
  try {
    for (let trial = 1; trial <= TRIALS; trial++) {
      // Interleaved, so a noisy moment on the machine hits every contender alike.
      const callsBefore = await emulatorCalls(emulatorUrl);
      const p = await prismTrial(nats.url, emulatorUrl, trial);
      const calls = (await emulatorCalls(emulatorUrl)) - callsBefore;
      if (calls !== JOBS) throw new Error(`the emulator saw ${calls} calls for ${JOBS} jobs`);
      prism.push(p);
      undici.push(undiciTrial(emulatorUrl));
      const a = asyncioTrial(emulatorUrl);
      if (a !== undefined) asyncio.push(a);
      console.error(
        `trial ${trial}: prism ${p.wallSeconds.toFixed(2)} s, undici ${undici.at(-1)!.wallSeconds.toFixed(2)} s` +
          (a !== undefined ? `, asyncio ${a.wallSeconds.toFixed(2)} s` : ''),
      );
    }
  } finally {
    await stopProcess(emulator);
    await nats.stop();
  }
  const ratio = (a: Trial[], b: Trial[]) =>
    (median(a.map((t) => t.wallSeconds)) / median(b.map((t) => t.wallSeconds))).toFixed(2);
  const lines = [
    `${JOBS} jobs, every call answered after ${LATENCY_MS} ms, no limits, ${TRIALS} trials interleaved; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString()}; ` +
      `file storage in ${args['data-dir']}`,
    '',
    '| contender | last call started s (median) | first result s (median) | wall s (median) | wall s (best) | CPU s (median) | peak RSS MiB (median) | ok per trial |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    row(
      `Prism${SHARDS > 1 ? ` (${SHARDS} shards)` : ''}: publish → node → fetch → file storage → result event`,
      prism,
    ),
    row(`undici alone: ${JOBS} concurrent fetches, nothing stored`, undici),
    ...(asyncio.length > 0
      ? [row('asyncio + aiohttp alone (the seed): fetches, nothing stored', asyncio)]
      : []),
    '',
    `Prism / undici-only wall: ${ratio(prism, undici)}` +
      (asyncio.length > 0 ? `; Prism / asyncio-only wall: ${ratio(prism, asyncio)}` : '') +
      `. The floor is ${(LATENCY_MS / 1000).toFixed(2)} s.`,
  ];
  const text = lines.join('\n');
  console.log(text);
  if (args.out !== undefined) writeFileSync(args.out, `${text}\n`);
}

await main();
