import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLING_PER_COLLECTOR } from '../../src/actors/collector.ts';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A collector hands a job whose calls are done to `Settling` (result publish, ack) and takes its
 * next call at once: NATS round trips do not hold the calls behind it. Here the NATS server is
 * stopped (SIGSTOP) while a node with ONE collector holds jobs for many keys: the collector keeps
 * calling for the held jobs while their results wait, up to the settling limit, then waits.
 * When NATS resumes, every job finishes, none twice and none lost.
 */
describe('jobs settle without holding their collector', () => {
  let h: Harness;
  // 12 calls of 200 ms one after another: the server stops long before the collector could
  // have made them all, and 2 s of it would fit 10 calls if nothing bounded them.
  const jobs = 12;

  beforeAll(async () => {
    h = await startHarness({ platforms: { quick: { style: 'generic', latencyMs: 200 } } });
    await h.startNode({
      node: { concurrency: 1, metricsInterval: '1s' },
      sources: { quick: { allowHosts: [h.host], apis: { report: {} } } },
    });
  });
  afterAll(async () => {
    if (h?.nats.pid !== undefined) process.kill(h.nats.pid, 'SIGCONT');
    await h?.close();
  });

  it('calls on while NATS is stopped, up to the limit, then finishes every job once it is back', async () => {
    const node = h.nodes[0]!;
    const ids: string[] = [];
    for (let i = 0; i < jobs; i++)
      ids.push(
        await h.publish({
          id: `settle-${i}`,
          source: 'quick',
          api: 'report',
          account: `acct-${i}`,
          request: { url: `http://${h.host}/quick/acct-${i}/report` },
        }),
      );
    // Every job pulled and held before the server stops (the node pulls them in one batch).
    const deadline = Date.now() + 10_000;
    while (node.snapshot().jobs.received < jobs && Date.now() < deadline) await sleep(5);
    expect(node.snapshot().jobs.received).toBe(jobs);

    const pid = h.nats.pid;
    if (pid === undefined) throw new Error('the NATS server has no pid');
    process.kill(pid, 'SIGSTOP');
    let callsWhileStopped: number;
    let settlingWhileStopped: number;
    try {
      const before = h.emulator.stats().calls;
      await sleep(2_000);
      callsWhileStopped = h.emulator.stats().calls - before;
      settlingWhileStopped = node.snapshot().jobs.settling;
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Not one call and then a wait for NATS: the collector went on. Not all of them either: at
    // most the limit settle at once, and the collector waits with one more call done.
    const limit = 1 * SETTLING_PER_COLLECTOR;
    expect(callsWhileStopped).toBeGreaterThan(1);
    expect(callsWhileStopped).toBeLessThanOrEqual(limit + 1);
    expect(settlingWhileStopped).toBe(limit);

    await h.waitFor(ids, 30_000);
    expect(ids.every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    const stats = h.emulator.stats();
    // One call per job: no job was redelivered and called again.
    expect(stats.calls).toBe(jobs);
    // A job counts as done once acked, a moment after its result went out.
    const acked = Date.now() + 10_000;
    while (node.snapshot().jobs.done < jobs && Date.now() < acked) await sleep(10);
    const snapshot = node.snapshot();
    expect(snapshot.jobs.done).toBe(jobs);
    expect(snapshot.jobs.settling).toBe(0);
    expect(snapshot.jobs.held).toBe(0);
  });
});
