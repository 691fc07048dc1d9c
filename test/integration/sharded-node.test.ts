import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { defaultStreamSettings, ensureStreams } from '../../src/bus/streams.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { PrismConfig, PrismConfigInput } from '../../src/config/schema.ts';
import type { NodeSnapshot } from '../../src/runtime/snapshot.ts';
import { spawnEmulator } from '../../src/emulator/process.ts';
import { shardOf } from '../../src/limits/shard-affinity.ts';
import { jobSubject } from '../../src/messages/subject.ts';
import { startShardedNode, type ShardedNode } from '../../src/runtime/sharded-node.ts';
import { STATUS_SUBJECT } from '../../src/system.ts';
import { pendingJobs, startHarness, type Harness } from '../helpers/prism-harness.ts';
import { spawnNodeProcess } from '../helpers/node-process.ts';

/**
 * A node of two shards (worker threads, each a node with its own heap, NATS connection and
 * in-memory ledger): jobs of many keys at once, limits checked by the emulator at arrival.
 */
describe('a sharded node', () => {
  const quiet = pino({ level: 'warn' });
  let h: Harness;
  let node: ShardedNode | undefined;

  const configFor = (host: string): PrismConfigInput => ({
    node: { shards: 2, ledger: 'memory', concurrency: 16, metricsInterval: '2s' },
    sources: {
      // Limited per account: its accounts spread over both shards.
      google: {
        allowHosts: [host],
        limits: [
          { key: '{source}/{account}', limit: 1, per: '200ms' },
          { key: '{source}/{account}', limit: 3, per: '1s' },
        ],
        apis: { search: {} },
      },
      // A limit on the whole source: all of it on one shard.
      tiktok: {
        allowHosts: [host],
        limits: [{ key: '{source}', limit: 5, per: '1s' }],
        apis: { report: {} },
      },
    },
  });

  const status = async (): Promise<NodeSnapshot[]> => {
    const answers: NodeSnapshot[] = [];
    const sub = h.nc.subscribe(`_INBOX.status.${Date.now()}`, {
      callback: (_e, msg) => void answers.push(msg.json<NodeSnapshot>()),
    });
    h.nc.publish(STATUS_SUBJECT, '', { reply: sub.getSubject() });
    await new Promise((resolve) => setTimeout(resolve, 500));
    sub.unsubscribe();
    return answers.sort((a, b) => a.node.localeCompare(b.node));
  };

  /** A sharded node of this test's NATS and storage. */
  const startSharded = (name: string, config: PrismConfig, storage = `file:${h.dataDir}`) =>
    startShardedNode({ config, natsUrl: h.nats.url, storage, name, log: quiet });
  /**
   * Publishes `perAccount` jobs for each of `accounts` accounts `<prefix>_<n>` of a source's api
   * (google/search unless said), calling `host` (the harness's emulator unless said); their ids.
   */
  const publishBatch = async (
    prefix: string,
    accounts: number,
    perAccount: number,
    { source = 'google', api = 'search', host = h.host } = {},
  ): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < perAccount; i++)
      for (let a = 0; a < accounts; a++)
        ids.push(
          await h.publish({
            id: `sh-${prefix}-${a}-${i}`,
            source,
            api,
            account: `${prefix}_${a}`,
            request: { url: `http://${host}/${source}/${prefix}_${a}/${api}` },
          }),
        );
    return ids;
  };

  beforeAll(async () => {
    h = await startHarness();
  });
  // A test that failed halfway leaves its node running: never into the next test.
  afterEach(async () => {
    await node?.drain();
    node = undefined;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('spreads keys over its shards, keeps every limit, and answers status per shard', async () => {
    // The platform in a process of its own, as for the multi-node tests: in the test's process its
    // arrival times would wait for the node's main thread (pulling, handing out jobs), which the
    // shards that make the calls do not, and it would count violations no platform would see.
    const platform = await spawnEmulator({
      limits: [
        { scope: 'account', platform: 'google', limit: 1, perMs: 200 },
        { scope: 'account', platform: 'google', limit: 3, perMs: 1000 },
        { scope: 'platform', platform: 'tiktok', limit: 5, perMs: 1000 },
      ],
    });
    onTestFinished(() => platform.close());
    node = await startSharded('sharded-1', parseConfig(configFor(platform.host)));
    expect(node.shardNames).toEqual(['sharded-1#0', 'sharded-1#1']);
    // The node's bounds are shared out, not given to each shard whole.
    const budgets = (await status()).map((s) => s.collectors);
    expect(budgets.map((c) => [c.total, c.bodies?.limitBytes])).toEqual([
      [8, 128 * 1024 * 1024],
      [8, 128 * 1024 * 1024],
    ]);
    const ids = [
      ...(await publishBatch('cust', 8, 4, { host: platform.host })),
      ...(await publishBatch('adv', 3, 4, { source: 'tiktok', api: 'report', host: platform.host })),
    ];
    await h.waitFor(ids, 30_000);
    expect(ids.filter((id) => h.results.get(id)?.status !== 'ok')).toEqual([]);
    const stats = await platform.stats();
    expect(
      stats.violations,
      JSON.stringify({ rules: stats.byRule, byKey: stats.byKey, loopDelayMaxMs: stats.loopDelayMaxMs }),
    ).toBe(0);
    // 12 tiktok calls at 5 per second take more than two seconds: the source-wide limit held them.
    expect(stats.calls).toBe(ids.length);
    // Results name the node, whichever shard made them.
    expect(new Set(ids.map((id) => h.results.get(id)?.node))).toEqual(new Set(['sharded-1']));
    // Both shards did work, and together exactly the jobs published (a shard counts a job done
    // once its ack is confirmed, a moment after its result reached us).
    let shards = await status();
    for (let i = 0; i < 20 && shards.reduce((n, s) => n + s.jobs.done, 0) < ids.length; i++)
      shards = await status();
    expect(shards.map((s) => s.node)).toEqual(['sharded-1#0', 'sharded-1#1']);
    for (const shard of shards) expect(shard.jobs.done).toBeGreaterThan(0);
    expect(shards.reduce((n, s) => n + s.jobs.done, 0)).toBe(ids.length);
    await node.drain();
    node = undefined;
  });

  it('hands parked jobs back to JetStream when it drains', async () => {
    h.emulator.setConfig({ ...h.emulator.config(), limits: [] });
    h.emulator.reset();
    const config = configFor(h.host);
    config.sources.google!.limits = [{ key: '{source}/{account}', limit: 1, per: '1h' }];
    node = await startSharded('sharded-2', parseConfig(config));
    const ids = await publishBatch('drain', 4, 3);
    // One call per account, then every account waits an hour: 8 jobs stay parked.
    const deadline = Date.now() + 15_000;
    while (h.emulator.stats().calls < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.emulator.stats().calls).toBe(4);
    const started = Date.now();
    await node.drain();
    node = undefined;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(ids.filter((id) => h.results.get(id)?.status === 'ok')).toHaveLength(4);
    // The rest wait in JetStream for the next node, none lost.
    expect(await pendingJobs(h.nc)).toBe(8);
  });

  it('holds a pause learned on one shard on the other', async () => {
    h.emulator.setConfig({ ...h.emulator.config(), limits: [] });
    h.emulator.reset();
    const config = configFor(h.host);
    config.sources.google!.signals = [
      {
        name: 'source-wide',
        match: { status: 429 },
        scope: '{source}',
        action: { type: 'pause', for: '1500ms' },
      },
    ];
    const parsed = parseConfig(config);
    node = await startSharded('sharded-3', parsed);
    const first = await h.publish({
      id: 'sh-pause-first',
      source: 'google',
      api: 'search',
      account: 'pause_0',
      request: { url: `http://${h.host}/google/pause_0/search`, query: { throttle: '1', failTimes: '1' } },
    });
    const deadline = Date.now() + 10_000;
    while (h.emulator.stats().throttled < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const pausedAt = Date.now();
    // The 429 has left the emulator; the shard that gets it pauses the source when it has read
    // it (on a loaded machine, tens of ms later). Only then is the pause the shards' to share.
    await new Promise((r) => setTimeout(r, 300));
    // Accounts on both shards, published while the source is paused.
    const accounts = Array.from({ length: 8 }, (_, a) => `pause_${a + 1}`);
    const onShard = new Set(
      accounts.map((account) => shardOf(jobSubject({ source: 'google', api: 'search', account }), parsed, 2)),
    );
    expect(onShard).toEqual(new Set([0, 1]));
    const ids = await Promise.all(
      accounts.map((account) =>
        h.publish({
          id: `sh-pause-${account}`,
          source: 'google',
          api: 'search',
          account,
          request: { url: `http://${h.host}/google/${account}/search` },
        }),
      ),
    );
    await h.waitFor([first, ...ids], 20_000);
    for (const id of [first, ...ids]) {
      const result = h.results.get(id);
      expect(result?.status).toBe('ok');
      // No shard called the source before the pause ended (1.5 s after the 429, less the time
      // the 429 took to be read); a shard that never heard of it calls at once (~300 ms).
      expect(Date.parse(result!.finishedAt) - pausedAt).toBeGreaterThanOrEqual(1_000);
    }
    expect(h.emulator.stats().throttled).toBe(1);
    await node.drain();
    node = undefined;
  });

  it('starts a shard that died again, and the jobs it held are done by the node', async () => {
    h.emulator.setConfig({
      ...h.emulator.config(),
      limits: [{ scope: 'account', platform: 'google', limit: 1, perMs: 200 }],
    });
    h.emulator.reset();
    node = await startSharded('sharded-4', parseConfig(configFor(h.host)));
    const ids = await publishBatch('crash', 8, 4);
    const deadline = Date.now() + 10_000;
    while ((node.shards()[0]?.held ?? 0) === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(node.shards()[0]?.held).toBeGreaterThan(0);
    await node.terminateShard(0);
    expect(node.shards()[0]).toMatchObject({ running: false, held: 0 });
    await h.waitFor(ids, 30_000);
    expect(ids.filter((id) => h.results.get(id)?.status !== 'ok')).toEqual([]);
    expect(node.shards()[0]).toMatchObject({ running: true, restarts: 1 });
    await node.drain();
    node = undefined;
  });

  it('fails to start with the reason when a shard cannot start, and leaves nothing running', async () => {
    await ensureStreams(h.nc, defaultStreamSettings);
    const before = await pendingJobs(h.nc);
    const starting = startSharded('sharded-bad', parseConfig(configFor(h.host)), 'ftp://nowhere/data');
    await expect(starting).rejects.toThrow(/storage URL "ftp:\/\/nowhere\/data" is not supported/);
    // It pulled nothing: no job was taken from JetStream meanwhile.
    expect(await pendingJobs(h.nc)).toBe(before);
  });

  it('loses nothing when its process is killed, and a new one finishes the jobs', async () => {
    h.emulator.setConfig({
      ...h.emulator.config(),
      limits: [{ scope: 'account', platform: 'google', limit: 1, perMs: 200 }],
    });
    h.emulator.reset();
    const dir = await mkdtemp(join(tmpdir(), 'prism-sharded-'));
    // The KV ledger: the windows of the killed node's calls outlive it.
    const config = configFor(h.host);
    config.node = { ...config.node, ledger: 'nats-kv', ackWait: '3s' };
    const spawnNode = (name: string) =>
      spawnNodeProcess({ name, config, natsUrl: h.nats.url, storage: `file:${h.dataDir}`, dir });
    const killed = await spawnNode('sharded-kill-1');
    const ids = await publishBatch('kill', 10, 5);
    const deadline = Date.now() + 15_000;
    while (h.emulator.stats().calls < 12 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    killed.signal('SIGKILL');
    await killed.exited;
    expect(ids.filter((id) => h.results.has(id)).length).toBeLessThan(ids.length);
    const next = await spawnNode('sharded-kill-2');
    try {
      await h.waitFor(ids, 60_000);
      expect(ids.filter((id) => h.results.get(id)?.status !== 'ok')).toEqual([]);
      expect(h.emulator.stats().violations).toBe(0);
    } finally {
      next.signal('SIGTERM');
      expect(await next.exited).toBe(0);
    }
  });
});
