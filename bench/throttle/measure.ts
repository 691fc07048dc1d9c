/**
 * What both contenders share: the workload's settings, the clock, and the recorder that turns
 * dispatch times into lateness, violations and "still waiting" figures. Nothing here trusts the
 * limiter under test: every figure comes from the dispatch times the stand-in API sees.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { writeHeapSnapshot } from 'node:v8';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { preciseNow } from '../../src/actors/services.ts';
import type { Job } from '../../src/messages/job.ts';

/** Wall-clock milliseconds with sub-millisecond precision: Prism's own clock (src/actors/services.ts). */
export const now = preciseNow;

/** Key `index`'s job, as a node's router would have parsed it (every harness builds the same). */
export function benchJob(index: number): Job {
  return {
    id: `bench-${index}`,
    source: 'bench',
    api: 'report',
    account: `act_${index}`,
    request: { method: 'GET', url: 'https://api.example.com/report', query: {}, headers: {}, body: null },
    meta: {},
  };
}

export interface Workload {
  /** Keys, each limited to `limit` call per `windowMs`. */
  keys: number;
  windowMs: number;
  /** How long dispatches are recorded, from the first arrival. */
  durationMs: number;
  /** Keys arrive spread evenly over this long (0: all at once), so the offered load is steady. */
  arrivalMs: number;
  /** Jobs each key holds on arrival; every dispatch brings one more, so a key is never idle. */
  backlog: number;
  /** Calls from this long after the first arrival on also count as "steady state". */
  steadyAfterMs: number;
}

/** Sent by a child process to the parent (over IPC) when it is done. */
export type ChildResult = RunResult | IdleResult;

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface RunResult {
  mode: 'run';
  contender: string;
  settings: string;
  keys: number;
  durationMs: number;
  /** Configured widening of every window (Prism's `limitMargin`; 0 for the peer). */
  marginMs: number;
  calls: number;
  /** Calls a perfect limiter would have made in the window (every key at its limit). */
  idealCalls: number;
  /** Lateness against the limit itself: first call vs its arrival, later ones vs previous + window. */
  lateness: Percentiles;
  /** Lateness against previous + window + margin (the earliest time the configured ledger allows). */
  latenessAfterMargin: Percentiles;
  /** latenessAfterMargin of the calls from `steadyAfterMs` after the first arrival on. */
  steadyAfterMs: number;
  steadyCalls: number;
  latenessSteady: Percentiles;
  /** Calls later than 5 ms against limit + margin (the target's bound): before `steadyAfterMs`, and after. */
  lateOver5ms: { beforeSteady: number; steady: number };
  /** Two dispatches of one key closer than the window. */
  violations: number;
  /** Prism: calls whose slot lapsed while they waited to leave and went back to wait (requeue). */
  lapsedSlots?: number;
  /** In a worker thread of shards.ts only: the histograms behind the percentiles, to merge. */
  histograms?: { lateness: HistogramCounts; latenessAfterMargin: HistogramCounts; steady: HistogramCounts };
  /** Smallest gap between two dispatches of one key, ms. */
  minGapMs: number;
  /** At the end of the window: keys whose next call was allowed (with margin) >100 ms ago and not made. */
  overdueKeys: number;
  /** The longest such wait at the end (a lower bound on a lateness not yet recorded). */
  maxOverdueMs: number;
  /** CPU (user + system) of the process during the window, seconds. */
  cpuSeconds: number;
  /** CPU of the whole process, set-up and tear-down included. */
  cpuTotalSeconds: number;
  peakRssMB: number;
  /** RSS before the first key arrived (modules loaded, nothing spawned). */
  startRssMB: number;
  /** How late the contender's event loop noticed the end of the window (saturation shows here). */
  endTimerLagMs: number;
  /** CPU other processes used during the window, % of the whole machine (Linux only). */
  othersPercent: number | undefined;
  /** 1-minute load average of the machine when the child started and ended. */
  loadBefore: number;
  loadAfter: number;
}

export interface IdleResult {
  mode: 'idle';
  contender: string;
  settings: string;
  keys: number;
  /** Heap after a full GC, per idle key, bytes. */
  heapPerKey: number;
  rssPerKey: number;
  baselineHeapMB: number;
  heapMB: number;
  rssMB: number;
}

/**
 * Lateness histogram: 10 µs buckets up to 100 ms, 1 ms buckets up to 120 s; exact max. Keeps
 * millions of samples in a few hundred KB, so recording costs both contenders the same and little.
 */
export class Histogram {
  private static readonly FINE_US = 10;
  private static readonly FINE_LIMIT_US = 100_000;
  private static readonly COARSE_US = 1_000;
  private static readonly COARSE_LIMIT_US = 120_000_000;
  private readonly fine = new Uint32Array(Histogram.FINE_LIMIT_US / Histogram.FINE_US);
  private readonly coarse = new Uint32Array(
    (Histogram.COARSE_LIMIT_US - Histogram.FINE_LIMIT_US) / Histogram.COARSE_US,
  );
  private over = 0;
  count = 0;
  max = Number.NEGATIVE_INFINITY;

  record(ms: number): void {
    this.count++;
    if (ms > this.max) this.max = ms;
    const us = Math.max(0, ms * 1_000);
    if (us < Histogram.FINE_LIMIT_US) this.fine[Math.floor(us / Histogram.FINE_US)]!++;
    else if (us < Histogram.COARSE_LIMIT_US)
      this.coarse[Math.floor((us - Histogram.FINE_LIMIT_US) / Histogram.COARSE_US)]!++;
    else this.over++;
  }

  /** The upper edge of the bucket holding the q-quantile (never above the exact max), ms. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i]!;
      if (seen >= rank) return Math.min(this.max, ((i + 1) * Histogram.FINE_US) / 1_000);
    }
    for (let i = 0; i < this.coarse.length; i++) {
      seen += this.coarse[i]!;
      if (seen >= rank)
        return Math.min(this.max, (Histogram.FINE_LIMIT_US + (i + 1) * Histogram.COARSE_US) / 1_000);
    }
    return this.max;
  }

  percentiles(): Percentiles {
    return { p50: this.quantile(0.5), p99: this.quantile(0.99), p999: this.quantile(0.999), max: this.max };
  }

  /** The counts, to merge in another thread (bench/throttle/shards.ts). */
  counts(): HistogramCounts {
    return { fine: this.fine, coarse: this.coarse, over: this.over, count: this.count, max: this.max };
  }

  /** Adds another histogram's counts: the percentiles of both sets of calls together, exactly. */
  add(other: HistogramCounts): void {
    for (let i = 0; i < this.fine.length; i++) this.fine[i]! += other.fine[i] ?? 0;
    for (let i = 0; i < this.coarse.length; i++) this.coarse[i]! += other.coarse[i] ?? 0;
    this.over += other.over;
    this.count += other.count;
    if (other.max > this.max) this.max = other.max;
  }
}

export interface HistogramCounts {
  fine: Uint32Array;
  coarse: Uint32Array;
  over: number;
  count: number;
  max: number;
}

/**
 * Per-key dispatch times. A key is always ready (it holds a backlog), so each call's earliest
 * allowed time is its arrival for the first call and the previous dispatch + window after.
 */
export class Recorder {
  private readonly arrival: Float64Array;
  private readonly last: Float64Array;
  /** Against the limit itself. */
  readonly lateness = new Histogram();
  /** Against the limit widened by the configured margin (the earliest time the ledger allows). */
  readonly latenessAfterMargin = new Histogram();
  /** Like latenessAfterMargin, from `steadyAfterMs` on: after keys arrived and actors spawned. */
  readonly steady = new Histogram();
  calls = 0;
  /** Calls later than 5 ms against limit + margin, before `steadyAfterMs` and after. */
  readonly lateOver5ms = { beforeSteady: 0, steady: 0 };
  violations = 0;
  minGapMs = Number.POSITIVE_INFINITY;
  private startAt = Number.NaN;
  private endAt = Number.POSITIVE_INFINITY;
  private readonly windowMs: number;
  private readonly marginMs: number;
  private readonly steadyAfterMs: number;
  /** THROTTLE_BENCH_PER_SECOND=1: calls, calls later than 5 ms and the max, per second, on stderr. */
  private readonly perSecond: Bin[] | undefined;
  /**
   * THROTTLE_BENCH_BINS=<file>: the same per 10 ms, written to the file as JSON at the end. It shows
   * how the keys' calls spread over each second (are they bunched, and where are the late ones).
   */
  private readonly bins: Bin[] | undefined;
  private readonly binsFile = process.env.THROTTLE_BENCH_BINS;

  constructor(keys: number, windowMs: number, marginMs: number, steadyAfterMs: number) {
    this.windowMs = windowMs;
    this.marginMs = marginMs;
    this.steadyAfterMs = steadyAfterMs;
    this.arrival = new Float64Array(keys).fill(Number.NaN);
    this.last = new Float64Array(keys).fill(Number.NaN);
    this.perSecond = process.env.THROTTLE_BENCH_PER_SECOND ? [] : undefined;
    this.bins = this.binsFile ? [] : undefined;
  }

  /** The window opens (the first key is about to arrive); dispatches after `endAt` do not count. */
  start(at: number, endAt: number): void {
    this.startAt = at;
    this.endAt = endAt;
  }

  /** The key's first job reached the limiter at `at`. */
  arrive(key: number, at: number): void {
    if (Number.isNaN(this.arrival[key]!)) this.arrival[key] = at;
  }

  dispatch(key: number, at: number): void {
    if (at > this.endAt) return;
    const previous = this.last[key]!;
    this.last[key] = at;
    this.calls++;
    let late: number;
    let lateAfterMargin: number;
    if (Number.isNaN(previous)) {
      late = lateAfterMargin = at - this.arrival[key]!;
    } else {
      const gap = at - previous;
      if (gap < this.windowMs) this.violations++;
      if (gap < this.minGapMs) this.minGapMs = gap;
      late = gap - this.windowMs;
      lateAfterMargin = late - this.marginMs;
    }
    this.lateness.record(late);
    this.latenessAfterMargin.record(lateAfterMargin);
    const elapsed = at - this.startAt;
    if (elapsed >= this.steadyAfterMs) this.steady.record(lateAfterMargin);
    if (lateAfterMargin > 5) {
      if (elapsed >= this.steadyAfterMs) this.lateOver5ms.steady++;
      else this.lateOver5ms.beforeSteady++;
    }
    if (this.bins !== undefined) countIn(this.bins, Math.floor(elapsed / 10), lateAfterMargin);
    if (this.perSecond !== undefined) {
      const second = (this.perSecond[Math.floor(elapsed / 1_000)] ??= { calls: 0, over5: 0, max: 0 });
      second.calls++;
      if (lateAfterMargin > 5) second.over5++;
      if (lateAfterMargin > second.max) second.max = lateAfterMargin;
    }
  }

  /** At the end of the window: keys whose next call was due more than 100 ms before it. */
  close(): { overdueKeys: number; maxOverdueMs: number } {
    const at = this.endAt;
    if (this.binsFile) writeFileSync(this.binsFile, JSON.stringify({ binMs: 10, bins: this.bins }));
    this.perSecond?.forEach((s, i) =>
      console.error(`second ${i}: ${s.calls} calls, ${s.over5} later than 5 ms, max ${s.max.toFixed(1)} ms`),
    );
    let overdueKeys = 0;
    let maxOverdueMs = 0;
    for (let key = 0; key < this.last.length; key++) {
      const previous = this.last[key]!;
      const arrived = this.arrival[key]!;
      if (Number.isNaN(arrived)) continue;
      const due = Number.isNaN(previous) ? arrived : previous + this.windowMs + this.marginMs;
      const overdue = at - due;
      if (overdue > 100) overdueKeys++;
      if (overdue > maxOverdueMs) maxOverdueMs = overdue;
    }
    return { overdueKeys, maxOverdueMs };
  }
}

interface Bin {
  calls: number;
  over5: number;
  max: number;
}

function countIn(bins: Bin[], index: number, late: number): void {
  const bin = (bins[index] ??= { calls: 0, over5: 0, max: 0 });
  bin.calls++;
  if (late > 5) bin.over5++;
  if (late > bin.max) bin.max = late;
}

/**
 * Brings keys in spread evenly over `arrivalMs` (0: all at once), in small batches off the event
 * loop so arrivals compete with dispatches as real traffic would. Resolves when all arrived.
 */
export function feedArrivals(
  workload: Workload,
  start: number,
  arrive: (key: number) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    const step = (): void => {
      const elapsed = now() - start;
      const due =
        workload.arrivalMs <= 0
          ? workload.keys
          : Math.min(workload.keys, Math.ceil((elapsed / workload.arrivalMs) * workload.keys));
      for (; next < due; next++) arrive(next);
      if (next < workload.keys) setTimeout(step, 1);
      else resolve();
    };
    step();
  });
}

const mb = (bytes: number): number => bytes / 1_048_576;

/** Runs the timed window: feeds arrivals, waits `durationMs`, then summarises what was recorded. */
export async function timedRun(
  workload: Workload,
  recorder: Recorder,
  arrive: (key: number) => void,
  describe: { contender: string; settings: string; marginMs: number },
): Promise<RunResult> {
  const loadBefore = loadAverage();
  const startRssMB = mb(process.memoryUsage.rss());
  const cpuStart = process.cpuUsage();
  const machineStart = machineCpu();
  const start = now();
  const endAt = start + workload.durationMs;
  recorder.start(start, endAt);
  // A saturated contender's own timers fire late (bottleneck at 100,000 keys: by ~20 s), so a
  // thread of its own takes the end-of-window samples on time; the CPU figures are process-wide.
  const atEnd = endOfWindow(endAt);
  await feedArrivals(workload, start, arrive);
  const end = await atEnd;
  const endedAt = now();
  const { overdueKeys, maxOverdueMs } = recorder.close();
  const cpuSeconds = (end.cpu.user + end.cpu.system - cpuStart.user - cpuStart.system) / 1e6;
  const total = process.cpuUsage();
  const othersPercent =
    machineStart === undefined || end.machine === undefined
      ? undefined
      : (100 * Math.max(0, end.machine.busy - machineStart.busy - cpuSeconds)) /
        (end.machine.total - machineStart.total);
  return {
    mode: 'run',
    ...describe,
    keys: workload.keys,
    durationMs: workload.durationMs,
    calls: recorder.calls,
    idealCalls: idealCalls(workload, describe.marginMs),
    lateness: recorder.lateness.percentiles(),
    latenessAfterMargin: recorder.latenessAfterMargin.percentiles(),
    steadyAfterMs: workload.steadyAfterMs,
    steadyCalls: recorder.steady.count,
    latenessSteady: recorder.steady.percentiles(),
    ...(isMainThread
      ? {}
      : {
          histograms: {
            lateness: recorder.lateness.counts(),
            latenessAfterMargin: recorder.latenessAfterMargin.counts(),
            steady: recorder.steady.counts(),
          },
        }),
    lateOver5ms: { ...recorder.lateOver5ms },
    violations: recorder.violations,
    minGapMs: recorder.minGapMs,
    overdueKeys,
    maxOverdueMs,
    cpuSeconds,
    cpuTotalSeconds: (total.user + total.system) / 1e6,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    startRssMB,
    endTimerLagMs: endedAt - endAt,
    othersPercent,
    loadBefore,
    loadAfter: loadAverage(),
  };
}

interface EndSample {
  cpu: NodeJS.CpuUsage;
  machine: { busy: number; total: number } | undefined;
}

/** Process CPU and machine CPU at `endAt` (ms, the `now()` clock), taken by a worker thread. */
function endOfWindow(endAt: number): Promise<EndSample> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { readFileSync } = require('node:fs');
    const machine = () => {
      try {
        const f = readFileSync('/proc/stat', 'utf8').split('\\n')[0].trim().split(/\\s+/).slice(1).map(Number);
        const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
        return { busy: (total - f[3] - f[4]) / 100, total: total / 100 };
      } catch {
        return undefined;
      }
    };
    const delay = workerData.endAt - (performance.timeOrigin + performance.now());
    setTimeout(() => parentPort.postMessage({ cpu: process.cpuUsage(), machine: machine() }), Math.max(0, delay));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { endAt } });
    worker.once('message', (sample: EndSample) => {
      resolve(sample);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

/** Calls in the window if every key dispatched exactly on time from its planned arrival. */
function idealCalls(workload: Workload, marginMs: number): number {
  let calls = 0;
  for (let key = 0; key < workload.keys; key++) {
    const arrival = workload.arrivalMs <= 0 ? 0 : (key / workload.keys) * workload.arrivalMs;
    calls += Math.floor((workload.durationMs - arrival) / (workload.windowMs + marginMs)) + 1;
  }
  return calls;
}

/** Measures the heap and RSS that `spawnIdle` adds, per key, after full GCs. */
export async function idleMemory(
  keys: number,
  spawnIdle: (keys: number) => Promise<void>,
  describe: { contender: string; settings: string },
): Promise<IdleResult> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('idle mode needs node --expose-gc');
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      gc();
    }
  };
  await settle();
  const baseline = process.memoryUsage();
  await spawnIdle(keys);
  await settle();
  const after = process.memoryUsage();
  // For finding what an idle key holds: THROTTLE_BENCH_HEAP_SNAPSHOT=file.heapsnapshot
  const snapshot = process.env.THROTTLE_BENCH_HEAP_SNAPSHOT;
  if (snapshot !== undefined && snapshot !== '') writeHeapSnapshot(snapshot);
  return {
    mode: 'idle',
    ...describe,
    keys,
    heapPerKey: (after.heapUsed - baseline.heapUsed) / keys,
    rssPerKey: (after.rss - baseline.rss) / keys,
    baselineHeapMB: mb(baseline.heapUsed),
    heapMB: mb(after.heapUsed),
    rssMB: mb(after.rss),
  };
}

/** Busy and total CPU time of the whole machine so far, in seconds (Linux /proc/stat). */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return undefined;
  }
}

export function loadAverage(): number {
  return Number((loadavg()[0] ?? 0).toFixed(2));
}

/** Waits until `done()` holds, checking every few ms; throws after `timeoutMs`. */
export async function until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Reads `--name value` flags of a child process (the parent passes them). */
const MODES = ['run', 'idle', 'passivated', 'cold', 'harness'] as const;
export type Mode = (typeof MODES)[number];
const isMode = (value: string): value is Mode => (MODES as readonly string[]).includes(value);

export function readWorkload(argv: readonly string[]): { mode: Mode; workload: Workload } {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) flags.set(argv[i]!.replace(/^--/, ''), argv[i + 1] ?? '');
  const num = (name: string, fallback: number): number => {
    const value = flags.get(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number ≥ 0, got ${value}`);
    return n;
  };
  const mode = flags.get('mode') ?? 'run';
  if (!isMode(mode)) throw new Error(`unknown --mode ${mode}`);
  return {
    mode,
    workload: {
      keys: num('keys', 1_000),
      windowMs: 1_000,
      durationMs: num('duration-ms', 5_000),
      arrivalMs: num('arrival-ms', 1_000),
      backlog: Math.max(1, num('backlog', 2)),
      steadyAfterMs: num('steady-after-ms', 5_000),
    },
  };
}

/**
 * Hands the result to the parent process (or, in a worker thread of bench/throttle/shards.ts, to
 * the thread that started it) and exits (actors and timers may still be armed).
 */
export function finish(result: ChildResult): void {
  if (!isMainThread && parentPort !== null) {
    parentPort.postMessage(result);
    process.exit(0);
  }
  if (process.send === undefined) {
    console.log(JSON.stringify(result, null, 2));
    process.exit(0);
  }
  process.send(result, () => process.exit(0));
}
