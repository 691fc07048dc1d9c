import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import type { EmulatorStats } from '../../src/emulator/types.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';
import { pendingJobs, startHarness, type Harness } from '../helpers/prism-harness.ts';
import { spawnEmulator, type EmulatorProcess } from '../../src/emulator/process.ts';
import { spawnNodeProcess, type NodeProcess } from '../helpers/node-process.ts';

/**
 * Three `prism node` processes share one JetStream consumer and one KV ledger; jobs for the same
 * keys land on all three at once, and the emulator (a process of its own) checks every limit at
 * arrival: each limit shape of the config has its twin rule at the emulator.
 */
describe('limits hold across three node processes', () => {
  let h: Harness;
  let emulator: EmulatorProcess;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    h = await startHarness();
    emulator = await spawnEmulator({
      latencyMs: 5,
      platforms: {
        meta: { style: 'meta' },
        tiktok: { style: 'tiktok' },
        google: { style: 'google' },
        // A style without RateLimit headers: those name no scope, so Prism pauses the whole key
        // (source/api/account) when one app's day is spent, and app B of the same account would
        // wait with it. The limits in the config are what this test is about.
        appsflyer: { style: 'naver' },
        adjust: { style: 'generic' },
        // Slow answers, so that calls would overlap if nothing kept them apart.
        kakao: { style: 'kakao', latencyMs: 150 },
        naver: { style: 'naver', latencyMs: 100 },
        adjustip: { style: 'generic' },
      },
      limits: [
        // Several windows on one account, across its APIs.
        { scope: 'account', platform: 'meta', limit: 1, perMs: 300 },
        { scope: 'account', platform: 'meta', limit: 4, perMs: 2_000 },
        // TikTok: per second AND per "minute" (3 s here) AND per day for each advertiser, and a
        // scope shared by every advertiser (and so by many throttle actors on every node).
        { scope: 'platform', platform: 'tiktok', limit: 8, perMs: 1_000 },
        { scope: 'account', platform: 'tiktok', limit: 2, perMs: 1_000 },
        { scope: 'account', platform: 'tiktok', limit: 4, perMs: 3_000 },
        { scope: 'account', platform: 'tiktok', limit: 6, reset: 'utc-day' },
        // One endpoint across accounts.
        { scope: 'platform-report', platform: 'google', report: 'search', limit: 3, perMs: 1_000 },
        // AppsFlyer: per app per report, per app per day, per account per day (the app is a job's
        // meta.app_id in Prism, a query parameter at the emulator).
        { scope: 'query', param: 'app_id', platform: 'appsflyer', report: 'installs', limit: 1, perMs: 500 },
        { scope: 'query', param: 'app_id', platform: 'appsflyer', report: 'events', limit: 1, perMs: 500 },
        { scope: 'query', param: 'app_id', platform: 'appsflyer', limit: 4, reset: 'utc-day' },
        { scope: 'account', platform: 'appsflyer', limit: 6, reset: 'utc-day' },
        // Weighted calls: 2 per second of a kind that costs 3 (limit 6 in the config).
        { scope: 'account', platform: 'adjust', limit: 2, perMs: 1_000 },
        // Concurrency: one call in flight per account, and two for the whole of naver.
        { scope: 'account', platform: 'kakao', concurrent: 1 },
        { scope: 'platform', platform: 'naver', concurrent: 2 },
        // Adjust counts calls per caller IP: each node calls from an address of its own.
        { scope: 'ip', platform: 'adjustip', limit: 2, perMs: 1_000 },
      ],
    });
    const host = emulator.host;
    const config = (egressAddress: string): PrismConfigInput => ({
      node: { concurrency: 32, metricsInterval: '2s', egressAddress },
      sources: {
        meta: {
          allowHosts: [host],
          limits: [
            { key: '{source}/{account}', limit: 1, per: '300ms' },
            { key: '{source}/{account}', limit: 4, per: '2s' },
          ],
          apis: { insights: { paginate: { next: 'paging.next' } }, campaigns: {} },
        },
        tiktok: {
          allowHosts: [host],
          limits: [
            { key: '{source}', limit: 8, per: '1s' },
            { key: '{source}/{account}', limit: 2, per: '1s' },
            { key: '{source}/{account}', limit: 4, per: '3s' },
            { key: '{source}/{account}', limit: 6, per: '1d', reset: 'utc-day' },
          ],
          apis: { report: {} },
        },
        google: {
          allowHosts: [host],
          limits: [{ key: '{source}/{api}', limit: 3, per: '1s' }],
          apis: { search: {} },
        },
        appsflyer: {
          allowHosts: [host],
          limits: [
            { key: '{source}/{meta.app_id}/{api}', limit: 1, per: '500ms' },
            { key: '{source}/{meta.app_id}', limit: 4, per: '1d', reset: 'utc-day' },
            { key: '{source}/{account}', limit: 6, per: '1d', reset: 'utc-day' },
          ],
          apis: { installs: {}, events: {} },
        },
        adjust: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 6, per: '1s' }],
          apis: { report: { weight: 3 } },
        },
        // Each node would start 4 calls of a key at once (apis.concurrency); the cluster-wide caps
        // are what keep them to 1 per account and 2 for the source.
        kakao: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', concurrent: 1 }],
          apis: { report: { concurrency: 4 } },
        },
        naver: {
          allowHosts: [host],
          limits: [{ key: '{source}', concurrent: 2 }],
          apis: { stats: { concurrency: 4 } },
        },
        adjustip: {
          allowHosts: [host],
          limits: [{ key: '{source}/{node}', limit: 2, per: '1s' }],
          apis: { report: {} },
        },
      },
    });
    const nodeDir = await mkdtemp(join(tmpdir(), 'prism-nodes-'));
    for (let i = 1; i <= 3; i++) {
      nodes.push(
        await spawnNodeProcess({
          name: `node-${i}`,
          // 127.0.0.2 … 127.0.0.4: three egress IPs on one machine (all of 127/8 is loopback).
          config: config(`127.0.0.${i + 1}`),
          natsUrl: h.nats.url,
          storage: `file:${h.dataDir}`,
          dir: nodeDir,
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    for (const node of nodes) node.signal('SIGTERM');
    await Promise.all(nodes.map((n) => n.exited));
    await emulator?.close();
    await h?.close();
  });

  let published = 0;
  /** Publishes n jobs for one key (each its own id), all at once. */
  const publish = async (
    source: string,
    api: string,
    account: string,
    n: number,
    query: Record<string, string> = {},
    meta: Record<string, string> = {},
  ): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++)
      ids.push(
        await h.publish({
          id: `${source}-${api}-${account}-${++published}`,
          source,
          api,
          account,
          request: { url: `http://${emulator.host}/${source}/${account}/${api}`, query },
          meta,
        }),
      );
    return ids;
  };

  /** Which rules broke, and how much the emulator's own loop lagged (its timing error), if any did. */
  const broken = (stats: EmulatorStats) => ({
    violations: stats.violations,
    broken: stats.byRule.filter((r) => r.violations > 0).map((r) => r.name),
    emulatorLoopDelayMaxMs: stats.violations > 0 ? stats.loopDelayMaxMs : 'not needed',
  });
  const noneBroken = { violations: 0, broken: [], emulatorLoopDelayMaxMs: 'not needed' };

  it('zero violations for windows, shared scopes, weights and concurrency caps, with the same keys on every node', async () => {
    const ids: string[] = [];
    for (const account of ['act_1', 'act_2']) {
      ids.push(...(await publish('meta', 'insights', account, 4, { pages: '2' })));
      ids.push(...(await publish('meta', 'campaigns', account, 4)));
    }
    for (let a = 0; a < 6; a++) ids.push(...(await publish('tiktok', 'report', `adv_${a}`, 3)));
    for (let a = 0; a < 4; a++) ids.push(...(await publish('google', 'search', `cust-${a}`, 2)));
    ids.push(...(await publish('adjust', 'report', 'com.example.app', 4)));
    ids.push(...(await publish('kakao', 'report', 'k_1', 8)));
    for (let a = 0; a < 6; a++) ids.push(...(await publish('naver', 'stats', `n_${a}`, 2)));
    for (let a = 0; a < 12; a++) ids.push(...(await publish('adjustip', 'report', `ip_${a}`, 1)));
    await h.waitFor(ids, 60_000);

    const stats = await emulator.stats();
    expect(ids.filter((id) => !h.results.has(id)).map((id) => [id, h.dead.get(id)?.reason])).toEqual([]);
    expect(broken(stats)).toEqual(noneBroken);
    expect(stats.throttled).toBe(0);
    // The work really was spread: every node finished some jobs.
    expect(new Set(ids.map((id) => h.results.get(id)?.node)).size).toBe(3);
    // And the limits really were what held the calls back (not an accident of timing): 12 calls
    // per meta account over two APIs, at 4 per 2 s, take at least 4 s.
    expect(stats.byKey['account:meta/act_1']).toMatchObject({ calls: 12 });
    expect(stats.byKey['account:meta/act_1']?.minGapMs).toBeGreaterThanOrEqual(290);
    // The caps were reached, never passed: 12 calls for 8 kakao jobs per 4 local slots × 3 nodes
    // would have had up to 8 in flight; naver's 12 jobs over 6 accounts up to 12.
    const rule = (name: string) => stats.byRule.find((r) => r.name.startsWith(name));
    expect(rule('account:kakao concurrent')).toMatchObject({ maxInFlight: 1, calls: 8 });
    expect(rule('platform:naver concurrent')).toMatchObject({ maxInFlight: 2, calls: 12 });
    // Calls left from more than one address, each node keeping its own address's limit.
    const fromAddresses = Object.keys(stats.byKey).filter((key) => key.startsWith('ip:adjustip/127.0.0.'));
    expect(fromAddresses.length).toBeGreaterThanOrEqual(2);
    expect(fromAddresses).not.toContain('ip:adjustip/127.0.0.1');
    // The ack follows the event it confirms by a moment.
    await expect.poll(() => pendingJobs(h.nc), { timeout: 5_000 }).toBe(0);
  }, 90_000);

  const msToMidnight = nextUtcMidnight(Date.now()) - Date.now();
  // Within five minutes of 00:00 UTC a quota could start over in the middle of the test.
  it.skipIf(msToMidnight < 5 * 60_000)(
    'daily quotas that reset at 00:00 UTC, per account and per app: the calls over them wait in JetStream',
    async () => {
      // 8 jobs for an advertiser whose day allows 6 (with its per-second and per-3-s windows).
      const tiktok = await publish('tiktok', 'report', 'adv_day', 8);
      // AppsFlyer, account acc_1: app A has 6 jobs over two reports and a day of 4; app B 2 jobs,
      // which fill the account's day of 6 exactly. Account acc_2's app C is not held up by them.
      const appA = [
        ...(await publish('appsflyer', 'installs', 'acc_1', 3, { app_id: 'A' }, { app_id: 'A' })),
        ...(await publish('appsflyer', 'events', 'acc_1', 3, { app_id: 'A' }, { app_id: 'A' })),
      ];
      const appB = await publish('appsflyer', 'installs', 'acc_1', 2, { app_id: 'B' }, { app_id: 'B' });
      const appC = await publish('appsflyer', 'installs', 'acc_2', 2, { app_id: 'C' }, { app_id: 'C' });
      const within = (ids: string[]) => ids.filter((id) => h.results.get(id)?.status === 'ok').length;
      await expect
        .poll(() => [within(tiktok), within(appA), within(appB), within(appC)], {
          timeout: 30_000,
          interval: 100,
        })
        .toEqual([6, 4, 2, 2]);
      // The jobs over a quota went back to JetStream, whichever node held them, and wait there
      // for the next UTC day instead of in any node's memory.
      await expect.poll(() => pendingJobs(h.nc), { timeout: 10_000, interval: 100 }).toBe(4);
      const stats = await emulator.stats();
      expect(broken(stats)).toEqual(noneBroken);
      expect(stats.quotaExceeded).toBe(0);
      expect(stats.byKey['account:tiktok/adv_day']).toMatchObject({ calls: 6 });
      expect(stats.byKey['query:appsflyer/app_id=A']).toMatchObject({ calls: 4 });
      expect(stats.byKey['account:appsflyer/acc_1']).toMatchObject({ calls: 6 });
      expect([...tiktok, ...appA].some((id) => h.dead.has(id))).toBe(false);
    },
    60_000,
  );
});
