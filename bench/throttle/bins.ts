/**
 * Reads a THROTTLE_BENCH_BINS file (a run's calls per 10 ms) and says how evenly the calls spread
 * over the steady part of the run, and where the late ones were. Keys that all allow 1 call a
 * second and always have a job would, left alone, keep calling as spread as they arrived. But a
 * key's next call may leave no sooner than its last one + the window, so a stall (a collection,
 * the VM taking the CPU) packs the calls due during it into a stretch at the node's own dispatch
 * rate after it, and they stay packed from then on: no key can move earlier again. This shows
 * how much of the run those stretches became, and what share of the late calls fell in them.
 *
 *   THROTTLE_BENCH_BINS=/tmp/bins.json node ... bench/throttle/prism.ts --mode run ...
 *   node bench/throttle/bins.ts /tmp/bins.json [--from-s 5] [--dense 1500]
 */
import { readFileSync } from 'node:fs';

interface Bin {
  calls: number;
  over5: number;
  max: number;
}

const args = process.argv.slice(2);
const file = args[0];
if (file === undefined || file.startsWith('--')) {
  console.error('usage: node bench/throttle/bins.ts <bins.json> [--from-s 5] [--dense 1500]');
  process.exit(2);
}
const option = (name: string, fallback: number): number => {
  const at = args.indexOf(name);
  return at < 0 ? fallback : Number(args[at + 1]);
};
const fromS = option('--from-s', 5);
const dense = option('--dense', 1_500);

const { binMs, bins } = JSON.parse(readFileSync(file, 'utf8')) as { binMs: number; bins: (Bin | null)[] };
const steady = bins.slice(Math.round((fromS * 1_000) / binMs));
const calls = steady.map((bin) => bin?.calls ?? 0);
const sorted = [...calls].sort((a, b) => a - b);
const quantile = (q: number): number => sorted[Math.floor(q * (sorted.length - 1))] ?? 0;
const totalCalls = calls.reduce((sum, c) => sum + c, 0);
let late = 0;
let lateInDense = 0;
let denseBins = 0;
for (const bin of steady) {
  if (bin === null) continue;
  late += bin.over5;
  if (bin.calls >= dense) {
    denseBins++;
    lateInDense += bin.over5;
  }
}
console.log(
  JSON.stringify({
    fromS,
    binMs,
    bins: steady.length,
    callsPerBinIfEven: Math.round(totalCalls / Math.max(1, steady.length)),
    emptyBins: calls.filter((c) => c === 0).length,
    callsPerBin: { p10: quantile(0.1), p50: quantile(0.5), p90: quantile(0.9), max: quantile(1) },
    [`binsWith${dense}OrMore`]: denseBins,
    callsLaterThan5ms: late,
    [`lateInBinsWith${dense}OrMore`]: lateInDense,
  }),
);
