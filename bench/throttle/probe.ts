/**
 * How fast this machine is at the two kinds of work the throttle benchmark mixes, so that runs on
 * different machines can be compared: plain arithmetic, and building a large heap of small
 * objects (which is what 100,000 keys and their parked jobs are). Two VMs of the same size here
 * differed by 2.5x in the second and not in the first (docs/benchmarks.md, 2026-12-02), and the
 * 100,000-key figures followed the second. Prints one JSON line: the best of three of each, in ms.
 *
 *   node --max-semi-space-size=8 bench/throttle/probe.ts
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

const best = (measure: () => number): number => Math.min(measure(), measure(), measure());
console.log(JSON.stringify({ additionsMs: Math.round(best(additionsMs)), heapMs: Math.round(best(heapMs)) }));
