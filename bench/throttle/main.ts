/**
 * The throttle benchmark: Prism's throttle path against `bottleneck` (one limiter per key in a
 * Group) on the same workload, each run in its own child process, one after the other, then
 * the memory an idle key costs in each. Writes bench/results/throttle-<date>.md (the table for
 * docs/benchmarks.md) and .json (every figure), and prints the table.
 *
 *   npm run bench:throttle                      # the reported run: 1k, 10k and 100k keys, 30 s each
 *   npm run bench:throttle -- --keys 1000 --duration 5 --idle-keys 1000    # a quick look
 *
 * Flags (or THROTTLE_BENCH_<FLAG> in the environment, e.g. THROTTLE_BENCH_KEYS=1000):
 *   --keys 1000,10000,100000 key counts of the timed runs (1,000: where neither contender is saturated)
 *   --duration 30            seconds each timed run records dispatches
 *   --trials 1               timed runs of each contender at each key count, interleaved (trial 1 of
 *                            every contender and key count, then trial 2, ...); with more than one,
 *                            the report adds each figure's median and range over the trials
 *   --contenders prism,bottleneck   also: prism-margin0 (Prism with limitMargin 0), prism-shards2
 *                            (Prism's throttle path in two worker threads, as node.shards: 2 runs it)
 *   --idle-keys 100000       keys for the memory-per-idle-key runs (0: skip them)
 *   --arrival 1              seconds over which keys arrive (0: all at once)
 *   --backlog 2              jobs a key holds on arrival (each dispatch brings one more)
 *   --steady-after 5         seconds after the first arrival from which lateness also counts as steady state
 *   --quiet-below 25         before each child, wait until other processes use < this % of the machine
 *   --quiet-wait 180         ... but at most this many seconds
 *   --out bench/results      the folder for throttle-<UTC time>.md and .json, or the .md file itself
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  machineCpu,
  type ChildResult,
  type IdleResult,
  type Percentiles,
  type RunResult,
} from './measure.ts';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { median } from '../e2e/proc.ts';
import type { Stalls } from './probe.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

interface Options {
  keys: number[];
  duration: number;
  trials: number;
  contenders: string[];
  idleKeys: number;
  arrival: number;
  backlog: number;
  steadyAfter: number;
  quietBelow: number;
  quietWait: number;
  out: string;
}

const CONTENDERS: Record<string, { file: string; args: string[] }> = {
  prism: { file: 'prism.ts', args: [] },
  'prism-margin0': { file: 'prism.ts', args: ['--margin-ms', '0'] },
  // The same throttle path in two worker threads of one process (a node with node.shards: 2).
  'prism-shards2': { file: 'shards.ts', args: ['--shards', '2'] },
  bottleneck: { file: 'bottleneck.ts', args: [] },
};

function readOptions(argv: readonly string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    flags.set(name, inline ?? argv[++i] ?? '');
  }
  const get = (name: string, fallback: string): string =>
    flags.get(name) ?? process.env[`THROTTLE_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? fallback;
  const num = (name: string, fallback: number): number => {
    const value = Number(get(name, String(fallback)));
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number ≥ 0`);
    return value;
  };
  const contenders = get('contenders', 'prism,bottleneck').split(',');
  for (const c of contenders) if (CONTENDERS[c] === undefined) throw new Error(`unknown contender ${c}`);
  return {
    keys: get('keys', '1000,10000,100000')
      .split(',')
      .map((k) => Number(k.replace(/_/g, '')))
      .filter((k) => k > 0),
    duration: num('duration', 30),
    trials: Math.max(1, Math.floor(num('trials', 1))),
    contenders,
    idleKeys: num('idle-keys', 100_000),
    arrival: num('arrival', 1),
    backlog: num('backlog', 2),
    steadyAfter: num('steady-after', 5),
    quietBelow: num('quiet-below', 25),
    quietWait: num('quiet-wait', 180),
    out: get('out', join(root, 'bench', 'results')),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to `maxSeconds`) until other processes use less than `belowPercent` of the machine. */
async function waitForQuiet(belowPercent: number, maxSeconds: number): Promise<number | undefined> {
  const deadline = Date.now() + maxSeconds * 1_000;
  for (;;) {
    const a = machineCpu();
    await sleep(3_000);
    const b = machineCpu();
    if (a === undefined || b === undefined) return undefined;
    const busy = (100 * (b.busy - a.busy)) / (b.total - a.total);
    if (busy < belowPercent || Date.now() > deadline) return busy;
    console.error(`  machine ${busy.toFixed(0)}% busy with other work; waiting for < ${belowPercent}%`);
  }
}

interface Measured<R> {
  result: R;
  wallSeconds: number;
}

async function runChild<R extends ChildResult>(
  options: Options,
  contender: string,
  args: string[],
): Promise<Measured<R> | { error: string }> {
  const quiet = await waitForQuiet(options.quietBelow, options.quietWait);
  if (quiet !== undefined) console.error(`  machine ${quiet.toFixed(0)}% busy before the start`);
  const spec = CONTENDERS[contender]!;
  const started = Date.now();
  return new Promise((resolve) => {
    let result: R | undefined;
    const child = fork(join(here, spec.file), [...args, ...spec.args], {
      // Both contenders run with the V8 flags a Prism node runs with (src/runtime/node-flags.ts).
      execArgv: ['--expose-gc', ...NODE_FLAGS],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const limit = setTimeout(
      () => child.kill('SIGKILL'),
      (options.duration + options.arrival) * 1_000 + 300_000,
    );
    child.on('message', (message) => {
      result = message as R;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      const wallSeconds = (Date.now() - started) / 1_000;
      if (result === undefined)
        resolve({ error: `exited with ${signal ?? `code ${code}`} before reporting` });
      else resolve({ result, wallSeconds });
    });
  });
}

const fmt = (n: number, digits = 1): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–';
// A NaN (no calls in that range) arrives as null over IPC.
const ms = (n: number | null): string =>
  n === null || Number.isNaN(n)
    ? '–'
    : n >= 1_000
      ? `${fmt(n / 1_000, 2)} s`
      : `${fmt(n, n < 10 ? 2 : 1)} ms`;
const triple = (p: Percentiles): string => `${ms(p.p50)} / ${ms(p.p99)} / ${ms(p.max)}`;
const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a / b) ? `${fmt(a / b, 1)}×` : '–');

function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench:throttle')
    return `npm run bench:throttle${args === '' ? '' : ` -- ${args}`}`;
  return `node bench/throttle/main.ts${args === '' ? '' : ` ${args}`}`;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return '?';
  }
}

function version(pkg: string): string {
  return (
    JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

const options = readOptions(process.argv.slice(2));
const startedAt = new Date();
const machine = {
  cores: availableParallelism(),
  cpu: cpus()[0]?.model.trim() ?? '?',
  memoryGiB: totalmem() / 1024 ** 3,
  node: process.version,
  loadBefore: loadavg()
    .map((l) => l.toFixed(2))
    .join(' '),
};
/** The machine probe (probe.ts), run with the node's flags before any contender. */
function probeMachine(): { additionsMs: number; heapMs: number; stalls: Stalls } | undefined {
  try {
    const out = execFileSync(process.execPath, [...NODE_FLAGS, join(here, 'probe.ts')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(out) as { additionsMs: number; heapMs: number; stalls: Stalls };
  } catch (error) {
    console.error(`machine probe failed: ${(error as Error).message}`);
    return undefined;
  }
}
const probe = probeMachine();

console.error(
  `throttle benchmark: ${options.contenders.join(' vs ')}, keys ${options.keys.join(', ')}, ` +
    `${options.duration} s each${options.trials > 1 ? `, ${options.trials} trials` : ''}`,
);

interface TimedRun {
  keys: number;
  contender: string;
  trial: number;
  outcome: Measured<RunResult> | { error: string };
}
const runs: TimedRun[] = [];
// Trials interleave: a machine that is slow for a minute slows one trial of every contender, not
// every trial of one.
for (let trial = 1; trial <= options.trials; trial++) {
  for (const keys of options.keys) {
    for (const contender of options.contenders) {
      const which = options.trials > 1 ? `, trial ${trial}/${options.trials}` : '';
      console.error(`- ${contender}, ${keys.toLocaleString('en-US')} keys, ${options.duration} s${which}`);
      const outcome = await runChild<RunResult>(options, contender, [
        '--mode',
        'run',
        '--keys',
        String(keys),
        '--duration-ms',
        String(options.duration * 1_000),
        '--arrival-ms',
        String(options.arrival * 1_000),
        '--backlog',
        String(options.backlog),
        '--steady-after-ms',
        String(options.steadyAfter * 1_000),
      ]);
      if ('error' in outcome) console.error(`  failed: ${outcome.error}`);
      else {
        const r = outcome.result;
        console.error(
          `  calls ${r.calls}/${r.idealCalls}, lateness p50/p99/max ${triple(r.lateness)}, ` +
            `${r.violations} violations, CPU ${fmt(r.cpuSeconds, 2)} s, peak RSS ${fmt(r.peakRssMB, 0)} MB` +
            (r.lapsedSlots === undefined ? '' : `, ${r.lapsedSlots} lapsed slots`),
        );
      }
      runs.push({ keys, contender, trial, outcome });
    }
  }
}
// The report lists a key count's runs together, each contender's trials in order.
runs.sort(
  (a, b) =>
    options.keys.indexOf(a.keys) - options.keys.indexOf(b.keys) ||
    options.contenders.indexOf(a.contender) - options.contenders.indexOf(b.contender) ||
    a.trial - b.trial,
);
const label = (contender: string, trial: number): string =>
  options.trials > 1 ? `${contender}, trial ${trial}` : contender;

const idles: { contender: string; state: string; outcome: Measured<IdleResult> | { error: string } }[] = [];
if (options.idleKeys > 0) {
  for (const contender of [
    // Variants of prism hold their idle keys as prism does.
    ...new Set(options.contenders.map((c) => (c.startsWith('prism') ? 'prism' : c))),
  ]) {
    // bottleneck's Group deletes idle limiters too, but its cleanup awaits a setTimeout(0) per
    // limiter (Group.js -> LocalDatastore.__groupCheck__ -> yieldLoop): a pass over 100,000 keys
    // takes minutes. `node bench/throttle/bottleneck.ts --mode passivated --keys N` measures it.
    for (const state of contender === 'prism' ? ['idle', 'passivated'] : ['idle']) {
      console.error(`- ${contender}, ${options.idleKeys.toLocaleString('en-US')} ${state} keys`);
      const outcome = await runChild<IdleResult>(options, contender, [
        '--mode',
        state,
        '--keys',
        String(options.idleKeys),
      ]);
      if ('error' in outcome) console.error(`  failed: ${outcome.error}`);
      else console.error(`  ${fmt(outcome.result.heapPerKey, 0)} B of heap per key`);
      idles.push({ contender, state, outcome });
    }
  }
}

// ---- the report ----
const dirty = git(['status', '--porcelain', '--', 'src'])
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => line.slice(3))
  .join(', ');
const lines: string[] = [];
const row = (cells: string[]): void => {
  lines.push(`| ${cells.join(' | ')} |`);
};
lines.push(
  `Run ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')} on ${machine.cores} cores (${machine.cpu}), ` +
    `${fmt(machine.memoryGiB, 0)} GiB RAM, Node ${machine.node}, bottleneck ${version('bottleneck')}, ` +
    `nact ${version('nact')}, Prism at ${git(['rev-parse', '--short', 'HEAD']).trim()}` +
    `${dirty === '' ? '' : ` with uncommitted changes in ${dirty}`}.`,
  '',
  probe === undefined
    ? 'Machine probe (`bench/throttle/probe.ts`): failed.'
    : `Machine probe (\`bench/throttle/probe.ts\`, best of 3): 10⁸ additions ${fmt(probe.additionsMs, 0)} ms, ` +
        `a map of 10⁶ small objects ${fmt(probe.heapMs, 0)} ms (the second is the kind of work a run of 100,000 keys is mostly made of); ` +
        `a thread that allocates nothing was stopped ${fmt(probe.stalls.over1ms, 0)} times for over 1 ms in ${probe.stalls.seconds} s, ` +
        `${fmt(probe.stalls.over5ms, 0)} of them over 5 ms, up to ${fmt(probe.stalls.maxMs, 1)} ms, ${fmt(probe.stalls.lostMsPerSecond, 1)} ms lost per second ` +
        `(the machine's own floor under lateness: at 100,000 calls a second a 5 ms stall makes ~500 calls late).`,
  '',
  `Command: \`${commandLine()}\``,
  '',
  `Workload: every key allows 1 call per ${1_000} ms; keys arrive spread over ${options.arrival} s, each with ` +
    `${options.backlog} jobs, and every dispatch brings its key one more job, so a key is always ready. ` +
    `${options.duration} s of dispatches recorded per run; each contender in its own process, one after the other` +
    (options.trials > 1
      ? `; ${options.trials} trials, interleaved (trial 1 of every contender and key count, then trial 2, ...).`
      : '.'),
  '',
);

lines.push(
  '| keys | contender | calls made / ideal | lateness vs limit: p50 / p99 / max | vs limit + margin: p50 / p99 / max | ' +
    `from ${fmt(options.steadyAfter, 0)} s on, vs limit + margin: p99 / max | violations | overdue at the end |`,
  '|---:|---|---:|---:|---:|---:|---:|---:|',
);
for (const { keys, contender, trial, outcome } of runs) {
  const k = keys.toLocaleString('en-US');
  if ('error' in outcome) {
    row([k, label(contender, trial), `failed: ${outcome.error}`, '', '', '', '', '']);
    continue;
  }
  const r = outcome.result;
  row([
    k,
    r.marginMs > 0 ? `${label(contender, trial)} (limitMargin ${r.marginMs} ms)` : label(contender, trial),
    `${r.calls.toLocaleString('en-US')} / ${r.idealCalls.toLocaleString('en-US')}`,
    triple(r.lateness),
    r.marginMs > 0 ? triple(r.latenessAfterMargin) : '(no margin)',
    `${ms(r.latenessSteady.p99)} / ${ms(r.latenessSteady.max)}`,
    `${r.violations.toLocaleString('en-US')}${r.violations > 0 ? ` (min gap ${fmt(r.minGapMs, 1)} ms)` : ''}`,
    r.overdueKeys === 0
      ? `none (max ${ms(r.maxOverdueMs)})`
      : `${r.overdueKeys.toLocaleString('en-US')} keys, max ${ms(r.maxOverdueMs)}`,
  ]);
}
/** The share of a run's calls later than 5 ms against limit + margin, %. */
const lateShare = (r: RunResult): number =>
  (100 * (r.lateOver5ms.beforeSteady + r.lateOver5ms.steady)) / r.calls;

lines.push(
  '',
  `Calls later than 5 ms after their earliest allowed time (vs limit + margin), the target's bound: p99 under 5 ms allows 1% of the calls made.`,
  '',
  `| keys | contender | before ${fmt(options.steadyAfter, 0)} s | from ${fmt(options.steadyAfter, 0)} s on | share of all calls made |`,
  '|---:|---|---:|---:|---:|',
);
for (const { keys, contender, trial, outcome } of runs) {
  if ('error' in outcome) continue;
  const r = outcome.result;
  const late = r.lateOver5ms;
  row([
    keys.toLocaleString('en-US'),
    label(contender, trial),
    late.beforeSteady.toLocaleString('en-US'),
    late.steady.toLocaleString('en-US'),
    `${fmt(lateShare(r), 2)}%`,
  ]);
}
lines.push(
  '',
  '| keys | contender | CPU s during the run | CPU s per 1,000 calls made | peak RSS | CPU of other processes during the run |',
  '|---:|---|---:|---:|---:|---:|',
);
for (const { keys, contender, trial, outcome } of runs) {
  if ('error' in outcome) continue;
  const r = outcome.result;
  row([
    keys.toLocaleString('en-US'),
    label(contender, trial),
    fmt(r.cpuSeconds, 2),
    fmt((1_000 * r.cpuSeconds) / r.calls, 3),
    `${fmt(r.peakRssMB, 0)} MB`,
    r.othersPercent === undefined ? '?' : `${fmt(r.othersPercent, 0)}% of the machine`,
  ]);
}

const lapsed = runs.flatMap(({ keys, trial, outcome }) =>
  'error' in outcome || outcome.result.lapsedSlots === undefined
    ? []
    : [
        `${outcome.result.lapsedSlots.toLocaleString('en-US')} at ${keys.toLocaleString('en-US')} keys` +
          (options.trials > 1 ? ` (trial ${trial})` : ''),
      ],
);
if (lapsed.length > 0)
  lines.push(
    '',
    `Prism calls whose slot lapsed before they left and that went back to wait ('requeue'): ${lapsed.join(', ')}.`,
  );

/** A contender's results at a key count, one per trial that reported. */
const resultsOf = (keys: number, contender: string): RunResult[] =>
  runs.flatMap((r) =>
    r.keys === keys && r.contender === contender && !('error' in r.outcome) ? [r.outcome.result] : [],
  );
/** The median over trials of a figure (the figure itself with one trial). */
const medianOf = (results: RunResult[], figure: (r: RunResult) => number): number =>
  median(results.map(figure));

if (options.trials > 1) {
  const spread = (
    results: RunResult[],
    figure: (r: RunResult) => number,
    show: (n: number) => string,
  ): string => {
    const values = results.map(figure);
    return `${show(median(values))} (${show(Math.min(...values))} – ${show(Math.max(...values))})`;
  };
  const percent = (n: number): string => `${fmt(n, 2)}%`;
  lines.push(
    '',
    `Over the ${options.trials} trials, median (lowest – highest):`,
    '',
    '| keys | contender | trials reported | share of calls later than 5 ms | lateness p99 vs limit + margin | CPU s | peak RSS MB |',
    '|---:|---|---:|---:|---:|---:|---:|',
  );
  for (const keys of options.keys)
    for (const contender of options.contenders) {
      const results = resultsOf(keys, contender);
      if (results.length === 0) continue;
      row([
        keys.toLocaleString('en-US'),
        contender,
        `${results.length} of ${options.trials}`,
        spread(results, lateShare, percent),
        spread(results, (r) => r.latenessAfterMargin.p99, ms),
        spread(
          results,
          (r) => r.cpuSeconds,
          (n) => fmt(n, 2),
        ),
        spread(
          results,
          (r) => r.peakRssMB,
          (n) => fmt(n, 0),
        ),
      ]);
    }
}

// Each Prism variant that ran (one thread, or the shards of a node) against the peer.
const prismVariants = ['prism', 'prism-shards2'].filter((variant) => options.contenders.includes(variant));
const comparable = options.keys.flatMap((k) =>
  prismVariants
    .filter((variant) => resultsOf(k, variant).length > 0 && resultsOf(k, 'bottleneck').length > 0)
    .map((variant) => ({ keys: k, variant })),
);
if (comparable.length > 0) {
  lines.push(
    '',
    options.trials > 1
      ? 'Ratios of the medians over the trials, bottleneck ÷ Prism:'
      : 'Ratios, bottleneck ÷ Prism:',
    '',
    '| keys | Prism | calls made | lateness p99 vs limit | lateness p99, each vs its own earliest allowed time | CPU s | CPU s per call made | peak RSS |',
    '|---:|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const { keys, variant } of comparable) {
    const a = resultsOf(keys, variant);
    const b = resultsOf(keys, 'bottleneck');
    const both = (figure: (r: RunResult) => number): string =>
      ratio(medianOf(b, figure), medianOf(a, figure));
    row([
      keys.toLocaleString('en-US'),
      variant,
      both((r) => r.calls),
      both((r) => r.lateness.p99),
      both((r) => r.latenessAfterMargin.p99),
      both((r) => r.cpuSeconds),
      both((r) => r.cpuSeconds / r.calls),
      both((r) => r.peakRssMB),
    ]);
  }
}

if (idles.length > 0) {
  lines.push(
    '',
    `Memory per idle key: ${options.idleKeys.toLocaleString('en-US')} keys each made one call and went idle; ` +
      'heap after full GCs (and RSS) minus the baseline before the first key, divided by the keys.',
    '',
    '| contender | idle key is | heap per key | RSS per key |',
    '|---|---|---:|---:|',
  );
  for (const { contender, state, outcome } of idles) {
    const what =
      state === 'idle'
        ? contender === 'prism'
          ? 'a live throttle actor + its ledger state'
          : 'a live limiter in the Group'
        : contender === 'prism'
          ? 'passivated: actor stopped, ledger state kept'
          : 'deleted by the Group timeout (its state is gone)';
    if ('error' in outcome) row([contender, what, `failed: ${outcome.error}`, '']);
    else
      row([
        contender,
        what,
        `${fmt(outcome.result.heapPerKey, 0)} B`,
        `${fmt(outcome.result.rssPerKey, 0)} B`,
      ]);
  }
}

const loadAfter = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
lines.push('', `Load average (1, 5, 15 min) before: ${machine.loadBefore}; after: ${loadAfter}.`);

const markdown = lines.join('\n') + '\n';
// --out is a folder (throttle-<UTC time>.md goes there) or the .md file itself (bench/run.sh).
const stamp = startedAt
  .toISOString()
  .replace(/[:]/g, '')
  .replace(/\.\d+Z$/, 'Z');
const base = options.out.endsWith('.md') ? options.out.slice(0, -3) : join(options.out, `throttle-${stamp}`);
mkdirSync(dirname(base), { recursive: true });
// Formatted as the repository's prettier config wants, so `npm run format:check` stays green.
const prettier = await import('prettier');
const write = async (file: string, text: string): Promise<void> => {
  const config = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(text, { ...config, filepath: file }));
};
await write(`${base}.md`, markdown);
await write(
  `${base}.json`,
  JSON.stringify(
    { startedAt, command: commandLine(), machine: { ...machine, probe }, options, runs, idles },
    null,
    2,
  ),
);
console.log(readFileSync(`${base}.md`, 'utf8'));
console.error(`written: ${relative(process.cwd(), base)}.md and .json`);
