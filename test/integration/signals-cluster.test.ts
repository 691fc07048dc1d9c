import { afterEach, describe, expect, it } from 'vitest';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';
import { pendingJobs, startHarness, type Harness } from '../helpers/prism-harness.ts';

/**
 * Throttle signals as state of the cluster: a pause one node learned from the platform holds on
 * the others (through the KV ledger), and a spent daily quota parks the key until 00:00 UTC in
 * JetStream, not in memory.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Signal = NonNullable<PrismConfigInput['sources'][string]['signals']>[number];

const metaWith = (host: string, signal: Omit<Signal, 'name'> & { name?: string }): PrismConfigInput => ({
  node: { metricsInterval: '1s', backoffBase: 50, backoffMax: 200 },
  sources: {
    meta: {
      allowHosts: [host],
      // No limit in the config: only the platform's signal stops the key.
      signals: [{ name: 'meta-signal', scope: '{source}/{account}', ...signal }],
      apis: { insights: {} },
    },
  },
});

describe('throttle signals hold on every node', () => {
  it('a pause signalled to one node holds on a node that takes the job over', async () => {
    const harness = (h = await startHarness({ latencyMs: 5 }));
    const config = metaWith(harness.host, {
      match: { status: 400, body: { path: 'error.code', in: [17] } },
      action: { type: 'pause', for: '3s' },
    });
    const first = await harness.startNode(config, { name: 'first' });
    // The platform answers the first call with Meta's "user request limit reached" (400, code 17).
    const x = await harness.publish({
      id: 'paused-x',
      source: 'meta',
      api: 'insights',
      account: 'act_s',
      request: {
        url: `http://${harness.host}/meta/act_s/insights`,
        query: { throttle: '1', failTimes: '1' },
      },
    });
    while (harness.emulator.stats().throttled < 1) await sleep(5);
    const signalledAt = Date.now();
    // Another node starts, and the first one leaves: the job and a second one go to the new node,
    // which never saw the signal itself.
    await harness.startNode(config, { name: 'second' });
    await first.drain();
    const y = await harness.publish({
      id: 'paused-y',
      source: 'meta',
      api: 'insights',
      account: 'act_s',
      request: { url: `http://${harness.host}/meta/act_s/insights` },
    });
    while (harness.emulator.stats().calls < 2) await sleep(5);
    const nextCallAfterMs = Date.now() - signalledAt;
    await harness.waitFor([x, y], 15_000);
    expect(harness.results.get(x)).toMatchObject({ status: 'ok', node: 'second' });
    expect(harness.results.get(y)).toMatchObject({ status: 'ok', node: 'second' });
    // The pause ran 3 s from the answer; a node that ignored it would have called within ms.
    expect(nextCallAfterMs).toBeGreaterThanOrEqual(2_800);
    expect(harness.emulator.stats()).toMatchObject({ throttled: 1, calls: 3 });
  }, 30_000);
});

describe('a spent daily quota', () => {
  const msToMidnight = nextUtcMidnight(Date.now()) - Date.now();
  // Within five minutes of 00:00 UTC the pause is too short to tell a spill from a wait.
  it.skipIf(msToMidnight < 5 * 60_000)(
    'pauses the key until 00:00 UTC, hands its jobs back to JetStream, and lets other keys run',
    async () => {
      const harness = (h = await startHarness({
        latencyMs: 5,
        platforms: { meta: { style: 'meta', dailyQuota: 2 } },
      }));
      const node = await harness.startNode(
        metaWith(harness.host, {
          name: 'meta-daily-quota',
          match: { status: 400, body: { path: 'error.code', in: [80000] } },
          action: { type: 'pause-until', reset: 'utc-day' },
        }),
      );
      const job = (account: string, i: number) =>
        harness.publish({
          id: `daily-${account}-${i}`,
          source: 'meta',
          api: 'insights',
          account,
          request: { url: `http://${harness.host}/meta/${account}/insights` },
        });
      const spent: string[] = [];
      for (let i = 0; i < 6; i++) spent.push(await job('act_d', i));
      await expect
        .poll(() => node.snapshot().jobs.spilled, { timeout: 10_000, interval: 50 })
        .toBeGreaterThanOrEqual(4);
      // The other account has its own quota and is not held up.
      const other = await job('act_other', 0);
      await harness.waitFor([other], 10_000);
      expect(harness.results.get(other)?.status).toBe('ok');

      // (The ack of the other job follows its result event by a moment.)
      await expect.poll(() => node.snapshot().jobs.held, { timeout: 5_000, interval: 20 }).toBe(0);
      const snapshot = node.snapshot();
      const done = spent.filter((id) => harness.results.has(id));
      expect(done).toHaveLength(2);
      expect(spent.some((id) => harness.dead.has(id))).toBe(false);
      // Nothing of the spent key waits in this node's memory; JetStream keeps the four jobs.
      expect(snapshot.throttles.parked).toBe(0);
      expect(await pendingJobs(harness.nc)).toBe(4);
      // Why it waits, and until when, is still known to the node (and `prism status`).
      const key = snapshot.paused.find((k) => k.key === 'meta.insights.act_d');
      expect(key).toMatchObject({
        until: new Date(nextUtcMidnight(Date.now())).toISOString(),
        parked: 0,
        reason: expect.stringMatching(/meta-daily-quota/),
      });
      // One call met the quota; no retry went around the pause.
      await sleep(1_000);
      expect(harness.emulator.stats()).toMatchObject({ quotaExceeded: 1, calls: 4 });
    },
    30_000,
  );
});
