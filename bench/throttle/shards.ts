/**
 * A lead for the 100,000-key target, not one of the reported runs: the same keys split over
 * worker threads of one process (each an isolate with its own heap, as a node of throttle shards
 * would run them) against one thread holding them all. Each shard runs bench/throttle/prism.ts
 * (the node's real throttle path) with its share of the keys, all at once; the figures that add
 * up (calls, calls later than 5 ms) are summed, and each shard's percentiles are listed.
 *
 * Worker threads share one process's V8 platform: with `--v8-pool-size=1` the shards' heaps have
 * one background GC thread between them, where two processes had one each (docs/benchmarks.md,
 * "Half the keys per heap").
 *
 *   node --expose-gc --max-semi-space-size=1 --v8-pool-size=1 bench/throttle/shards.ts \
 *        --shards 2 --keys 100000 --duration-ms 60000
 *
 * `--shards 1` runs the same in one worker thread (the main thread only waits), for a like-for-like
 * comparison. Prints one JSON object: the sums, then each shard's own result.
 */
import { Worker } from 'node:worker_threads';
import type { RunResult } from './measure.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  return value;
};
const shards = flag('shards', 2);
const keys = flag('keys', 100_000);
const durationMs = flag('duration-ms', 60_000);

const script = new URL('./prism.ts', import.meta.url);
const results = await Promise.all(
  Array.from({ length: shards }, (_, shard) => {
    const share = Math.floor(keys / shards) + (shard < keys % shards ? 1 : 0);
    return new Promise<RunResult>((resolve, reject) => {
      const worker = new Worker(script, {
        argv: ['--mode', 'run', '--keys', String(share), '--duration-ms', String(durationMs)],
      });
      worker.once('message', (result: RunResult) => resolve(result));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`shard ${shard} exited (${code}) without a result`)));
    });
  }),
);

const sum = (pick: (r: RunResult) => number): number => results.reduce((total, r) => total + pick(r), 0);
const calls = sum((r) => r.calls);
const late = sum((r) => r.lateOver5ms.beforeSteady + r.lateOver5ms.steady);
console.log(
  JSON.stringify(
    {
      shards,
      keys,
      durationMs,
      calls,
      idealCalls: sum((r) => r.idealCalls),
      lateOver5ms: {
        beforeSteady: sum((r) => r.lateOver5ms.beforeSteady),
        steady: sum((r) => r.lateOver5ms.steady),
      },
      latePercent: Number(((100 * late) / calls).toFixed(2)),
      p99AfterMarginPerShard: results.map((r) => r.latenessAfterMargin.p99),
      maxAfterMarginPerShard: results.map((r) => Math.round(r.latenessAfterMargin.max)),
      violations: sum((r) => r.violations),
      // Process-wide figures, read by each shard at the end of its window: the largest.
      cpuSeconds: Math.max(...results.map((r) => r.cpuSeconds)),
      peakRssMB: Math.round(Math.max(...results.map((r) => r.peakRssMB))),
      perShard: results,
    },
    null,
    2,
  ),
);
process.exit(0);
