/**
 * Contender "prism-shards2" of the throttle benchmark, and a tool of its own: the node's throttle
 * path split over worker threads of one process, as a node with `node.shards` runs it (each shard
 * an isolate with its own heap; src/runtime/sharded-node.ts). Each thread runs
 * bench/throttle/prism.ts (real actors, throttle, ledger and scheduler) with its share of the keys,
 * all at once, and the figures are merged: counts added, lateness histograms added (exact
 * percentiles over all calls), the process-wide CPU and RSS taken once.
 *
 * Worker threads share one process's V8 platform: with `--v8-pool-size=1` the shards' heaps have
 * one background GC thread between them.
 *
 *   node --expose-gc --max-semi-space-size=1 --v8-pool-size=1 bench/throttle/shards.ts \
 *        --shards 2 --keys 100000 --duration-ms 60000 [any other flag of prism.ts --mode run]
 *
 * Started by bench/throttle/main.ts (with an IPC channel) it reports like the other contenders;
 * run by hand it prints the merged result and each shard's own.
 */
import { Worker } from 'node:worker_threads';
import { finish, Histogram, type RunResult } from './measure.ts';

const args = process.argv.slice(2);
const valueOf = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? undefined : args[at + 1];
};
const shards = Number(valueOf('shards') ?? 2);
const keys = Number(valueOf('keys') ?? 100_000);
if (!Number.isInteger(shards) || shards < 1) throw new Error('--shards must be a positive integer');
if (valueOf('mode') !== undefined && valueOf('mode') !== 'run')
  throw new Error('shards.ts runs timed runs only (--mode run)');
// What each shard gets: the same flags, but its own share of the keys.
const passOn = (share: number): string[] => {
  const out: string[] = ['--mode', 'run', '--keys', String(share)];
  for (let i = 0; i < args.length; i += 2)
    if (!['--shards', '--keys', '--mode'].includes(args[i] as string))
      out.push(args[i] as string, args[i + 1] ?? '');
  return out;
};

const script = new URL('./prism.ts', import.meta.url);
const results = await Promise.all(
  Array.from({ length: shards }, (_, shard) => {
    const share = Math.floor(keys / shards) + (shard < keys % shards ? 1 : 0);
    return new Promise<RunResult>((resolve, reject) => {
      const worker = new Worker(script, { argv: passOn(share) });
      worker.once('message', (result: RunResult) => resolve(result));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`shard ${shard} exited (${code}) without a result`)));
    });
  }),
);

const merged = (pick: (r: RunResult) => NonNullable<RunResult['histograms']>['lateness']) => {
  const histogram = new Histogram();
  for (const r of results) histogram.add(pick(r));
  return histogram.percentiles();
};
const sum = (pick: (r: RunResult) => number): number => results.reduce((total, r) => total + pick(r), 0);
const most = (pick: (r: RunResult) => number): number => Math.max(...results.map(pick));
const first = results[0] as RunResult;
for (const r of results) if (r.histograms === undefined) throw new Error('a shard sent no histograms');

const result: RunResult = {
  ...first,
  contender: `prism (${shards} shards)`,
  settings: `${first.settings}, ${shards} worker threads of ~${Math.round(keys / shards).toLocaleString('en-US')} keys`,
  keys,
  calls: sum((r) => r.calls),
  idealCalls: sum((r) => r.idealCalls),
  lateness: merged((r) => r.histograms!.lateness),
  latenessAfterMargin: merged((r) => r.histograms!.latenessAfterMargin),
  steadyCalls: sum((r) => r.steadyCalls),
  latenessSteady: merged((r) => r.histograms!.steady),
  lateOver5ms: {
    beforeSteady: sum((r) => r.lateOver5ms.beforeSteady),
    steady: sum((r) => r.lateOver5ms.steady),
  },
  violations: sum((r) => r.violations),
  lapsedSlots: sum((r) => r.lapsedSlots ?? 0),
  minGapMs: Math.min(...results.map((r) => r.minGapMs)),
  overdueKeys: sum((r) => r.overdueKeys),
  maxOverdueMs: most((r) => r.maxOverdueMs),
  // Process-wide figures, read by each shard at the end of its own window: the largest.
  cpuSeconds: most((r) => r.cpuSeconds),
  cpuTotalSeconds: most((r) => r.cpuTotalSeconds),
  peakRssMB: most((r) => r.peakRssMB),
  startRssMB: Math.min(...results.map((r) => r.startRssMB)),
  endTimerLagMs: most((r) => r.endTimerLagMs),
  othersPercent: first.othersPercent,
  loadAfter: most((r) => r.loadAfter),
};
delete result.histograms;

if (process.send !== undefined) finish(result);
else {
  console.log(
    JSON.stringify({ ...result, perShard: results.map(({ histograms: _, ...rest }) => rest) }, null, 2),
  );
  process.exit(0);
}
