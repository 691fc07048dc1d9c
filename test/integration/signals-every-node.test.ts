import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import { PLATFORM_SIGNALS } from '../../src/config/platforms.ts';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import type { LimitRule } from '../../src/emulator/types.ts';
import type { RateLedger } from '../../src/limits/ledger.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';
import type { PrismNode } from '../../src/system.ts';
import { pendingJobs, startHarness, type Harness } from '../helpers/prism-harness.ts';

/**
 * Every throttle signal as the platforms send it, with three nodes sharing the jobs and the KV
 * ledger: the signalled scope pauses (or slows) on every node, and only that scope; it resumes
 * when the signal says; and the retry of the refused call still waits for the key's limits.
 *
 * Each scenario names the time the emulator saw the refused call (`signalledAt`): a call of the
 * scope that reached the platform before the pause ended would show up as a result finished
 * too early, or as a violation of the emulator's own rules.
 */
type Signals = NonNullable<PrismConfigInput['sources'][string]['signals']>;

/** The production signals of a platform, with a test-sized pause. */
const shortened = (signals: Signals | undefined, pauseFor: string): Signals =>
  (signals ?? []).map((signal) =>
    signal.action.type === 'pause' && signal.action.delayPath === undefined
      ? { ...signal, action: { ...signal.action, for: pauseFor } }
      : signal,
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('throttle signals on every node of three', () => {
  let h: Harness;
  const nodes: PrismNode[] = [];

  beforeAll(async () => {
    h = await startHarness({
      latencyMs: 5,
      platforms: {
        ...defaultEmulatorConfig().platforms,
        metausage: { style: 'meta' },
        metaday: { style: 'meta', dailyQuota: 2 },
      },
    });
    const host = h.host;
    const config: PrismConfigInput = {
      node: { metricsInterval: '1s', backoffBase: 50, backoffMax: 200, concurrency: 16 },
      sources: {
        meta: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '200ms' }],
          signals: shortened(PLATFORM_SIGNALS.meta, '2s'),
          apis: { insights: {}, campaigns: {} },
        },
        // Production's own signal: 40100 pauses the advertiser for 1 s.
        tiktok: { allowHosts: [host], signals: PLATFORM_SIGNALS.tiktok, apis: { report: {} } },
        // Production's own signal: the delay Google writes in its body wins over the 5 s configured.
        google: { allowHosts: [host], signals: PLATFORM_SIGNALS.google, apis: { search: {} } },
        appsflyer: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '2s' }],
          // AppsFlyer-like: a 429 stops every account of the app, for as long as Retry-After says.
          signals: [
            {
              name: 'af-app-429',
              match: { status: 429 },
              scope: '{source}/{meta.app}',
              action: { type: 'pause' },
            },
          ],
          apis: { report: {} },
        },
        // The app's limit, keyed by the job's meta.app: each app of an account is a line of its own.
        adjustapp: {
          allowHosts: [host],
          limits: [{ key: '{source}/{meta.app}', limit: 1, per: '2s' }],
          apis: { report: {} },
        },
        kakao: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 5, per: '1s' }],
          signals: [
            {
              name: 'kakao-slow',
              match: { body: { path: 'code', in: [-10] } },
              scope: '{source}/{account}',
              action: { type: 'slow', interval: '600ms', for: '10s' },
            },
          ],
          apis: { report: {} },
        },
        metausage: {
          allowHosts: [host],
          usage: { kind: 'meta', slowInterval: '700ms' },
          apis: { insights: {} },
        },
        metaday: {
          allowHosts: [host],
          signals: [
            {
              name: 'meta-daily-quota',
              match: { status: 400, body: { path: 'error.code', in: [80000] } },
              scope: '{source}/{account}',
              action: { type: 'pause-until', reset: 'utc-day' },
            },
          ],
          apis: { insights: {} },
        },
      },
    };
    for (let i = 1; i <= 3; i++) nodes.push(await h.startNode(config, { name: `node-${i}` }));
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  let published = 0;
  const job = (
    source: string,
    api: string,
    account: string,
    query: Record<string, string> = {},
    meta: Record<string, string> = {},
  ): Promise<string> =>
    h.publish({
      // Jobs without an id get one from their content: these would all be one job.
      id: `${source}-${account}-${++published}`,
      source,
      api,
      account,
      request: { url: `http://${h.host}/${source}/${account}/${api}`, query },
      meta,
    });

  /** Fresh emulator counters and rules; returns when the emulator first answers a throttle after it. */
  const scenario = (limits: LimitRule[] = []) => {
    h.emulator.setConfig({ ...h.emulator.config(), limits });
    h.emulator.reset();
    return async (): Promise<number> => {
      while (h.emulator.stats().throttled < 1) await sleep(2);
      return Date.now();
    };
  };

  /** Resolves once every node's ledger holds what `seen` looks for (the KV watch spreads it). */
  const onEveryNode = (seen: (ledger: RateLedger, now: number) => unknown) =>
    expect
      .poll(() => nodes.filter((n) => seen(n.services.ledger, Date.now()) !== undefined).length, {
        timeout: 3_000,
        interval: 20,
      })
      .toBe(3);

  const finishedAfter = (id: string, since: number): number =>
    Date.parse(h.results.get(id)?.finishedAt ?? '1970-01-01') - since;

  it('Meta 400 + code 17 pauses the account on every node, across its APIs; other accounts go on', async () => {
    const signalled = scenario();
    const refused = await job('meta', 'insights', 'act_a', { throttle: '1', failTimes: '1' });
    const signalledAt = await signalled();
    await onEveryNode((ledger, now) => ledger.pausedUntil('meta/act_a', now));
    const sameAccount = [await job('meta', 'campaigns', 'act_a'), await job('meta', 'insights', 'act_a')];
    const otherAccount = [await job('meta', 'insights', 'act_b'), await job('meta', 'campaigns', 'act_b')];
    await h.waitFor(otherAccount, 10_000);
    // The other account did not wait for the 2 s pause (its own limit: 1 call per 200 ms).
    for (const id of otherAccount) expect(finishedAfter(id, signalledAt)).toBeLessThan(1_500);
    await h.waitFor([refused, ...sameAccount], 10_000);
    for (const id of [refused, ...sameAccount]) {
      expect(h.results.get(id)).toMatchObject({ status: 'ok', attempts: 1 });
      expect(finishedAfter(id, signalledAt)).toBeGreaterThanOrEqual(1_950);
    }
    // Only the account: code 17 is not the app's limit.
    for (const node of nodes) expect(node.services.ledger.pausedUntil('meta', Date.now())).toBeUndefined();
    expect(h.emulator.stats()).toMatchObject({ throttled: 1, calls: 6 });
  }, 20_000);

  it("Meta 400 + code 4 (the app's limit) pauses every account of the source on every node", async () => {
    const signalled = scenario();
    const refused = await job('meta', 'insights', 'act_c', {
      throttle: '1',
      failTimes: '1',
      throttleCode: '4',
    });
    const signalledAt = await signalled();
    await onEveryNode((ledger, now) => ledger.pausedUntil('meta', now));
    const otherAccounts = [await job('meta', 'insights', 'act_d'), await job('meta', 'campaigns', 'act_e')];
    const otherSource = await job('tiktok', 'report', 'adv_z');
    await h.waitFor([otherSource], 10_000);
    expect(finishedAfter(otherSource, signalledAt)).toBeLessThan(1_000);
    await h.waitFor([refused, ...otherAccounts], 10_000);
    for (const id of [refused, ...otherAccounts]) {
      expect(h.results.get(id)).toMatchObject({ status: 'ok', attempts: 1 });
      expect(finishedAfter(id, signalledAt)).toBeGreaterThanOrEqual(1_950);
    }
  }, 20_000);

  it('TikTok 200 + code 40100 pauses the advertiser on every node for 1 s, then resumes', async () => {
    const signalled = scenario();
    const refused = await job('tiktok', 'report', 'adv_a', { throttle: '1', failTimes: '1' });
    const signalledAt = await signalled();
    await onEveryNode((ledger, now) => ledger.pausedUntil('tiktok/adv_a', now));
    const same = [await job('tiktok', 'report', 'adv_a'), await job('tiktok', 'report', 'adv_a')];
    const other = await job('tiktok', 'report', 'adv_b');
    await h.waitFor([other], 10_000);
    expect(finishedAfter(other, signalledAt)).toBeLessThan(700);
    await h.waitFor([refused, ...same], 10_000);
    for (const id of [refused, ...same]) {
      // An HTTP 200 that is a throttle is not data: the job was fetched again, not stored as is.
      expect(h.results.get(id)).toMatchObject({ status: 'ok', attempts: 1 });
      expect(finishedAfter(id, signalledAt)).toBeGreaterThanOrEqual(950);
    }
    expect(h.emulator.stats()).toMatchObject({ throttled: 1, calls: 5, ok: 4 });
  }, 20_000);

  it('Google RESOURCE_EXHAUSTED pauses for the retryDelay in its body, not the configured 5 s', async () => {
    const signalled = scenario();
    // The emulator writes retryDelay "2s" (1.5 s rounded up to whole seconds, as Google does).
    const refused = await job('google', 'search', 'cust_a', {
      throttle: '1',
      failTimes: '1',
      retryAfter: '1500',
    });
    const signalledAt = await signalled();
    await onEveryNode((ledger, now) => ledger.pausedUntil('google/cust_a', now));
    const pause = nodes[1]!.services.ledger.pausedUntil('google/cust_a', Date.now());
    expect((pause?.until ?? 0) - signalledAt).toBeGreaterThanOrEqual(1_900);
    expect((pause?.until ?? 0) - signalledAt).toBeLessThan(2_500);
    await h.waitFor([refused], 10_000);
    expect(finishedAfter(refused, signalledAt)).toBeGreaterThanOrEqual(1_950);
    expect(finishedAfter(refused, signalledAt)).toBeLessThan(4_500);
  }, 20_000);

  it('a 429 with Retry-After pauses every account of the app; the retry still waits for its own limit', async () => {
    // The platform's own limit: 1 call per 2 s per account, the same as the config's. Retry-After
    // says 1 s: a retry that went around the limiter would reach it 1 s after the refused call.
    const signalled = scenario([{ scope: 'account', platform: 'appsflyer', limit: 1, perMs: 2_000 }]);
    const refused = await job(
      'appsflyer',
      'report',
      'acc_1',
      { throttle: '1', failTimes: '1', retryAfter: '1000' },
      { app: 'app_A' },
    );
    const signalledAt = await signalled();
    await onEveryNode((ledger, now) => ledger.pausedUntil('appsflyer/app_A', now));
    const sameApp = await job('appsflyer', 'report', 'acc_2', {}, { app: 'app_A' });
    const otherApp = await job('appsflyer', 'report', 'acc_3', {}, { app: 'app_B' });
    await h.waitFor([otherApp], 10_000);
    expect(finishedAfter(otherApp, signalledAt)).toBeLessThan(800);
    await h.waitFor([refused, sameApp], 10_000);
    expect(finishedAfter(sameApp, signalledAt)).toBeGreaterThanOrEqual(950);
    expect(finishedAfter(refused, signalledAt)).toBeGreaterThanOrEqual(1_950);
    const stats = h.emulator.stats();
    expect(stats.violations).toBe(0);
    expect(stats.byKey['account:appsflyer/acc_1']?.minGapMs).toBeGreaterThanOrEqual(2_000);
    expect(stats).toMatchObject({ throttled: 1, calls: 4 });
  }, 20_000);

  it('RateLimit headers about one app pause that app of the account on every node, not the others', async () => {
    // The platform's own limit per app, announced in RateLimit-* headers on every answer (the
    // emulator's generic style): after one call the app has none left for 2 s.
    scenario([{ scope: 'query', param: 'app_id', platform: 'adjustapp', limit: 1, perMs: 2_000 }]);
    const first = await job('adjustapp', 'report', 'acc_9', { app_id: 'A' }, { app: 'A' });
    await h.waitFor([first], 10_000);
    const answeredAt = Date.now();
    await onEveryNode((ledger, now) => ledger.pausedUntil('adjustapp/report/acc_9/app=A', now));
    for (const node of nodes) {
      expect(node.services.ledger.pausedUntil('adjustapp/report/acc_9/app=B', Date.now())).toBeUndefined();
      expect(node.services.ledger.pausedUntil('adjustapp/report/acc_9', Date.now())).toBeUndefined();
    }
    const sameApp = await job('adjustapp', 'report', 'acc_9', { app_id: 'A' }, { app: 'A' });
    const otherApp = await job('adjustapp', 'report', 'acc_9', { app_id: 'B' }, { app: 'B' });
    await h.waitFor([otherApp, sameApp], 10_000);
    expect(finishedAfter(otherApp, answeredAt)).toBeLessThan(1_000);
    expect(finishedAfter(sameApp, answeredAt)).toBeGreaterThanOrEqual(1_000);
    expect(h.emulator.stats()).toMatchObject({ violations: 0, throttled: 0, calls: 3 });
  }, 20_000);

  it('a slow signal spaces the scope out on every node, counting from the refused call', async () => {
    // The platform allows 1 call per 600 ms; the config says 5 per second, so only the slowdown
    // keeps these calls apart.
    const signalled = scenario([{ scope: 'account', platform: 'kakao', limit: 1, perMs: 600 }]);
    const refused = await job('kakao', 'report', 'k_a', { throttle: '1', failTimes: '1' });
    await signalled();
    await onEveryNode((ledger, now) => ledger.slowedBy('kakao/k_a', now));
    const more: string[] = [];
    for (let i = 0; i < 4; i++) more.push(await job('kakao', 'report', 'k_a'));
    await h.waitFor([refused, ...more], 15_000);
    expect([refused, ...more].every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    const stats = h.emulator.stats();
    expect(stats.violations).toBe(0);
    expect(stats.byKey['account:kakao/k_a']).toMatchObject({ calls: 6 });
    expect(stats.byKey['account:kakao/k_a']?.minGapMs).toBeGreaterThanOrEqual(600);
  }, 20_000);

  it("Meta usage headers slow the account on every node before the platform's limit is reached", async () => {
    scenario([{ scope: 'account', platform: 'metausage', limit: 4, perMs: 2_000 }]);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await job('metausage', 'insights', 'act_u'));
    await onEveryNode(
      (ledger, now) => ledger.slowedBy('metausage/act_u', now) ?? ledger.pausedUntil('metausage/act_u', now),
    );
    await h.waitFor(ids, 20_000);
    expect(ids.every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    // Without the headers, 8 calls at once would break "4 per 2 s" four times.
    expect(h.emulator.stats()).toMatchObject({ violations: 0, throttled: 0, calls: 8 });
  }, 30_000);

  const msToMidnight = nextUtcMidnight(Date.now()) - Date.now();
  // Within five minutes of 00:00 UTC the pause is too short to tell a spill from a wait.
  it.skipIf(msToMidnight < 5 * 60_000)(
    'a spent daily quota pauses the account until 00:00 UTC on every node; no node calls again',
    async () => {
      scenario();
      const spent: string[] = [];
      for (let i = 0; i < 6; i++) spent.push(await job('metaday', 'insights', 'act_d'));
      await onEveryNode((ledger, now) => ledger.pausedUntil('metaday/act_d', now));
      // Calls already in flight when the first answer came may still meet the quota (at most one
      // per node: one call of a key at a time); none may start once every node knows.
      await sleep(100);
      const callsWhenKnown = h.emulator.stats().byKey['account:metaday/act_d']?.calls;
      for (const node of nodes)
        expect(node.services.ledger.pausedUntil('metaday/act_d', Date.now())?.until).toBe(
          nextUtcMidnight(Date.now()),
        );
      const other = await job('metaday', 'insights', 'act_other');
      await h.waitFor([other], 10_000);
      // The four jobs over the quota wait in JetStream, whichever node took them.
      await expect.poll(() => pendingJobs(h.nc), { timeout: 10_000, interval: 50 }).toBe(4);
      await expect
        .poll(() => nodes.reduce((held, n) => held + n.snapshot().jobs.held, 0), { timeout: 5_000 })
        .toBe(0);
      expect(spent.filter((id) => h.results.has(id))).toHaveLength(2);
      await sleep(1_000);
      // Two calls within the quota, one to three that met it, and no node called again after.
      const stats = h.emulator.stats();
      expect(stats.quotaExceeded).toBeGreaterThanOrEqual(1);
      expect(stats.quotaExceeded).toBeLessThanOrEqual(3);
      expect(stats.byKey['account:metaday/act_d']?.calls).toBe(2 + stats.quotaExceeded);
      expect(stats.byKey['account:metaday/act_d']?.calls).toBe(callsWhenKnown);
    },
    30_000,
  );
});
