import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

describe('fairness, bounded memory and passivation on one node', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ latencyMs: 2 });
    await h.startNode({
      node: {
        concurrency: 8,
        maxParked: 300,
        maxParkedPerKey: 40,
        passivateAfter: '500ms',
        metricsInterval: '1s',
      },
      sources: {
        adjust: {
          allowHosts: [h.host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '100ms' }],
          apis: { report: {} },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('light keys finish at their own pace behind a hot key with a deep backlog, and memory stays bounded', async () => {
    const hot: string[] = [];
    for (let i = 0; i < 400; i++) {
      hot.push(
        await h.publish({
          id: `hot-${i}`,
          source: 'adjust',
          api: 'report',
          account: 'hot',
          request: { url: `http://${h.host}/adjust/hot/report` },
        }),
      );
    }
    const published = Date.now();
    const light: string[] = [];
    for (let a = 0; a < 30; a++) {
      light.push(
        await h.publish({
          id: `light-${a}`,
          source: 'adjust',
          api: 'report',
          account: `light-${a}`,
          request: { url: `http://${h.host}/adjust/light-${a}/report` },
        }),
      );
    }
    await h.waitFor(light, 15_000);
    const lightDone = Date.now() - published;
    const snapshot = h.nodes[0]!.snapshot();
    // The hot key alone needs 40 s at 10 calls/s; the light keys did not wait for it.
    expect(lightDone).toBeLessThan(5_000);
    expect(hot.filter((id) => h.results.has(id)).length).toBeLessThan(200);
    // Bounded memory: the node and the hot key hold no more than configured; the rest waits in JetStream.
    expect(snapshot.jobs.held).toBeLessThanOrEqual(300);
    expect(snapshot.topParked[0]?.parked ?? 0).toBeLessThanOrEqual(40);
    expect(snapshot.jobs.spilled).toBeGreaterThan(0);
    // Why is it waiting: the hot key is named with its limit.
    expect(snapshot.topParked[0]?.key).toBe('adjust.report.hot');
    const hotWait = snapshot.mostDelayed.find((k) => k.key === 'adjust.report.hot');
    if (hotWait !== undefined) expect(hotWait.reason).toMatch(/limit 1\/100ms on adjust\/hot|concurrency/);
    expect(h.emulator.stats().violations).toBe(0);
  }, 30_000);

  it('idle throttle actors stop and a respawned one does not burst', async () => {
    await expect
      .poll(() => h.nodes[0]!.snapshot().throttles.passivated, { timeout: 5_000 })
      .toBeGreaterThanOrEqual(30);
    const before = h.nodes[0]!.snapshot().throttles.alive;
    expect(before).toBeLessThanOrEqual(2);
    h.emulator.reset();
    h.emulator.setConfig({
      ...h.emulator.config(),
      limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 100 }],
    });
    const again = [];
    for (let i = 0; i < 5; i++) {
      again.push(
        await h.publish({
          id: `again-${i}`,
          source: 'adjust',
          api: 'report',
          account: 'light-1',
          request: { url: `http://${h.host}/adjust/light-1/report` },
        }),
      );
    }
    await h.waitFor(again, 10_000);
    expect(h.emulator.stats().violations).toBe(0);
  }, 30_000);
});

describe('apps of one account, each with its own limit', () => {
  let h: Harness;
  beforeAll(async () => {
    // AppsFlyer's "1 call per app per report" (per 2 s here): the app is the job's meta.app_id,
    // and a query parameter for the emulator, which checks the same limit per app.
    h = await startHarness({
      latencyMs: 2,
      limits: [{ scope: 'query', param: 'app_id', platform: 'appsflyer', limit: 1, perMs: 2_000 }],
    });
    await h.startNode({
      node: { concurrency: 8, metricsInterval: '1s' },
      sources: {
        appsflyer: {
          allowHosts: [h.host],
          limits: [{ key: '{source}/{meta.app_id}/{api}', limit: 1, per: '2s' }],
          apis: { installs: {} },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('move at their own pace: one app waiting for its window holds up no other app of the account', async () => {
    const ids: string[] = [];
    const started = Date.now();
    for (let round = 0; round < 2; round++)
      for (const app of ['A', 'B', 'C', 'D', 'E'])
        ids.push(
          await h.publish({
            id: `app-${app}-${round}`,
            source: 'appsflyer',
            api: 'installs',
            account: 'acc_1',
            request: { url: `http://${h.host}/appsflyer/acc_1/installs`, query: { app_id: app } },
            meta: { app_id: app },
          }),
        );
    await h.waitFor(ids, 20_000);
    // Two calls per app need one window (2 s); one line for the account would need nine (18 s).
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(ids.every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    expect(h.emulator.stats()).toMatchObject({ calls: 10, violations: 0 });
    // Each app has its own throttle actor (its own line); status names the app.
    expect(h.nodes[0]!.snapshot().throttles.spawned).toBe(5);
  }, 30_000);
});
