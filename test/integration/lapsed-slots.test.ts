import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

/**
 * A slot is taken when the throttle lets a call go, but the call leaves only when a collector is
 * free. Calls that waited in the pool longer than their window must not then leave together:
 * here every collector is busy with slow calls while four keys that share one limit take their
 * slots; when the collectors free up, the calls must still reach the platform 200 ms apart. The
 * KV ledger counts a slot until the latest time its call may leave (SEND_ALLOWANCE_MS, 1 s), so
 * its keys take their slots further apart: the slow calls take longer than that, for slots to
 * lapse with either ledger, and with a shorter allowance set in the config.
 */
describe.each([
  { ledger: 'nats-kv', sendAllowance: undefined },
  { ledger: 'nats-kv', sendAllowance: '400ms' },
  { ledger: 'memory', sendAllowance: undefined },
] as const)(
  'calls that waited for a collector longer than their window ($ledger ledger, send allowance $sendAllowance)',
  ({ ledger, sendAllowance }) => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({
        platforms: { hog: { style: 'generic', latencyMs: 2_500 }, tight: { style: 'generic', latencyMs: 5 } },
        limits: [{ scope: 'platform', platform: 'tight', limit: 1, perMs: 200 }],
      });
      await h.startNode({
        node: { concurrency: 2, ledger, ...(sendAllowance !== undefined ? { sendAllowance } : {}) },
        sources: {
          hog: { allowHosts: [h.host], apis: { report: {} } },
          // One limit for the whole source, shared by every account's throttle actor.
          tight: {
            allowHosts: [h.host],
            limits: [{ key: '{source}', limit: 1, per: '200ms' }],
            apis: { report: {} },
          },
        },
      });
    });
    afterAll(async () => {
      await h?.close();
    });

    it('take their slots again when they leave, so the platform sees no two calls too close', async () => {
      const job = (source: string, account: string) =>
        h.publish({
          id: `${source}-${account}`,
          source,
          api: 'report',
          account,
          request: { url: `http://${h.host}/${source}/${account}/report` },
        });
      const hogs = [await job('hog', 'a'), await job('hog', 'b')];
      while (h.emulator.stats().inFlight < 2) await new Promise((r) => setTimeout(r, 5));
      const tight = [];
      for (const account of ['t1', 't2', 't3', 't4']) tight.push(await job('tight', account));
      await h.waitFor([...hogs, ...tight], 20_000);
      expect([...hogs, ...tight].every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
      const stats = h.emulator.stats();
      expect(stats.byKey['platform:tight']?.minGapMs).toBeGreaterThanOrEqual(200);
      expect(stats.violations).toBe(0);
      // The scenario really made slots lapse (else it would prove nothing).
      expect(h.nodes[0]?.snapshot().calls.lapsedSlots).toBeGreaterThan(0);
      // The config's allowance is the one the KV ledger keeps (the memory ledger needs none).
      const allowance = h.nodes[0]?.services.ledger.sendAllowanceMs;
      expect(allowance).toBe(ledger === 'memory' ? undefined : sendAllowance === undefined ? 1_000 : 400);
    });
  },
);
