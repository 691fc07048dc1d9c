/**
 * How fast this machine is at the two kinds of work the throttle benchmark mixes, so that runs on
 * different machines can be compared: plain arithmetic, and building a large heap of small
 * objects (which is what 100,000 keys and their parked jobs are). Two VMs of the same size here
 * differed by 2.5x in the second and not in the first (docs/benchmarks.md, 2026-12-02), and the
 * 100,000-key figures followed the second. And how often the machine itself stops a running
 * thread: a loop that allocates nothing (so no garbage collection) reads the clock for 10 s and
 * counts every gap of over 1 ms between two reads, time the thread was not running (the
 * hypervisor's steal, other processes). At 100,000 calls a second, a 5 ms stall makes ~500 calls
 * late whatever the throttle does, so this is the floor under a run's lateness. Two runs on an
 * otherwise idle 2-core AMD EPYC VM here (2026-12-03): 91 and 130 gaps over 1 ms in 10 s, 3 and 7
 * of them over 5 ms, up to 9.1 ms, 19 and 33 ms lost per second.
 * Prints one JSON line: the best of three of the first two, in ms, then the stalls.
 *
 *   node --max-semi-space-size=1 --v8-pool-size=1 bench/throttle/probe.ts
 */

function additionsMs(): number {
  const start = performance.now();
  let sum = 0;
  for (let i = 0; i < 1e8; i++) sum += i;
  const took = performance.now() - start;
  if (sum <= 0) throw new Error('unreachable: keeps the loop from being optimised away');
  return took;
}

function heapMs(): number {
  const start = performance.now();
  const map = new Map<string, { index: number; items: number[] }>();
  for (let i = 0; i < 1e6; i++) map.set(`key-${i}`, { index: i, items: [i] });
  const took = performance.now() - start;
  if (map.size !== 1e6) throw new Error('unreachable: keeps the map alive until measured');
  return took;
}

export interface Stalls {
  seconds: number;
  over1ms: number;
  over5ms: number;
  maxMs: number;
  /** Time lost in those gaps, per second of the probe. */
  lostMsPerSecond: number;
}

function stalls(seconds: number): Stalls {
  const end = performance.now() + seconds * 1_000;
  let last = performance.now();
  let over1ms = 0;
  let over5ms = 0;
  let maxMs = 0;
  let lostMs = 0;
  for (let now = last; now < end; last = now) {
    now = performance.now();
    const gap = now - last;
    if (gap <= 1) continue;
    over1ms++;
    if (gap > 5) over5ms++;
    if (gap > maxMs) maxMs = gap;
    lostMs += gap;
  }
  return {
    seconds,
    over1ms,
    over5ms,
    maxMs: Number(maxMs.toFixed(1)),
    lostMsPerSecond: Number((lostMs / seconds).toFixed(1)),
  };
}

const best = (measure: () => number): number => Math.min(measure(), measure(), measure());
console.log(
  JSON.stringify({
    additionsMs: Math.round(best(additionsMs)),
    heapMs: Math.round(best(heapMs)),
    stalls: stalls(10),
  }),
);
