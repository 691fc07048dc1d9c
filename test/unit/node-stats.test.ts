import { describe, expect, it } from 'vitest';
import { NodeStats, RecentSamples } from '../../src/runtime/node-stats.ts';
import { takeSnapshot } from '../../src/runtime/snapshot.ts';

describe('RecentSamples', () => {
  it('is all zeros before the first sample', () => {
    expect(new RecentSamples().percentiles()).toEqual({ p50: 0, p95: 0, p99: 0, max: 0, maxEver: 0 });
  });

  it('gives percentiles over the recent samples and the largest since start', () => {
    const samples = new RecentSamples();
    for (let ms = 1; ms <= 100; ms++) samples.record(ms);
    expect(samples.percentiles()).toEqual({ p50: 51, p95: 96, p99: 100, max: 100, maxEver: 100 });
    // 4,096 newer samples push the old ones out of the ring; the largest ever stays.
    for (let n = 0; n < 4_096; n++) samples.record(2);
    expect(samples.percentiles()).toEqual({ p50: 2, p95: 2, p99: 2, max: 2, maxEver: 100 });
  });
});

describe('takeSnapshot', () => {
  it('reports how long after their grant calls left, next to their latency', () => {
    const stats = new NodeStats();
    stats.sendLag.record(3);
    stats.sendLag.record(560);
    stats.latency.record(20);
    const snapshot = takeSnapshot('n1', stats, { held: 0, inFlightRequests: 0 });
    expect(snapshot.calls.sendLagMs).toMatchObject({ max: 560, maxEver: 560 });
    expect(snapshot.calls.latencyMs).toMatchObject({ p50: 20, max: 20 });
  });

  it("carries the shared ledger's round trips, and none for a ledger in memory", () => {
    const stats = new NodeStats();
    const traffic = { reads: 3, writes: 8, conflicts: 1 };
    expect(takeSnapshot('n1', stats, { held: 0, inFlightRequests: 0, ledger: traffic }).ledger).toEqual(
      traffic,
    );
    expect(takeSnapshot('n1', stats, { held: 0, inFlightRequests: 0 })).not.toHaveProperty('ledger');
  });

  it("says how late the node's event loop ran", async () => {
    const stats = new NodeStats();
    // Let the 10 ms timer that measures it start, hold the loop for 80 ms, let the timer fire.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const until = performance.now() + 80;
    while (performance.now() < until);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const { eventLoopDelayMs } = takeSnapshot('n1', stats, { held: 0, inFlightRequests: 0 });
    expect(eventLoopDelayMs.max).toBeGreaterThanOrEqual(60);
    expect(eventLoopDelayMs.p50).toBeLessThanOrEqual(eventLoopDelayMs.max);
  });
});
