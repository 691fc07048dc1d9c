import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/bus/nats-connection.ts';
import { publishJob } from '../../src/client/jobs.ts';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import type { EmulatorConfig, EmulatorStats } from '../../src/emulator/types.ts';
import type { DeadLetter, ResultEvent } from '../../src/messages/result.ts';
import { FileStorage } from '../../src/storage/file-storage.ts';
import { S3Storage } from '../../src/storage/s3-storage.ts';
import type { ObjectStorage } from '../../src/storage/storage.ts';
import { createBucket, startRgw } from '../helpers/rgw.ts';
import type { NodeSnapshot } from '../../src/runtime/snapshot.ts';
import { STATUS_SUBJECT } from '../../src/system.ts';
import { spawnEmulator, type EmulatorProcess } from '../../src/emulator/process.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';
import { spawnNodeProcess, type NodeProcess } from '../helpers/node-process.ts';
import { account, type Accounting } from '../helpers/verify.ts';

/**
 * Faults with real processes: `prism node` processes killed with SIGKILL or drained with
 * SIGTERM, nats-server killed and restarted. Each scenario has its own NATS, emulator and nodes.
 * Each prints one `fault (x)` line with its figures (docs/reliability.md quotes them).
 * PRISM_KEEP_FAULT_DIR=1 keeps each scenario's folder (node configs and logs) for a post-mortem.
 */
interface Scenario {
  nats: NatsServerHandle;
  emulator: EmulatorProcess;
  nc: NatsConnection;
  js: JetStreamClient;
  dir: string;
  storage: ObjectStorage;
  nodes: NodeProcess[];
  results: Map<string, ResultEvent>;
  dead: Map<string, DeadLetter>;
  config: PrismConfigInput;
  addNode(name: string): Promise<NodeProcess>;
  waitFor(ids: string[], timeoutMs: number): Promise<void>;
}

let current: Scenario | undefined;
let stopStorage: (() => Promise<void>) | undefined;

/** Where the nodes store: a folder of the scenario's own by default, or an S3 bucket. */
interface StorageChoice {
  url: string;
  env: NodeJS.ProcessEnv;
  storage: ObjectStorage;
  stop(): Promise<void>;
}

async function scenario(
  emulatorConfig: Partial<EmulatorConfig>,
  config: (host: string) => PrismConfigInput,
  storageChoice?: StorageChoice,
): Promise<Scenario> {
  const nats = await startNatsServer();
  const emulator = await spawnEmulator(emulatorConfig);
  const nc = await connectNats({ url: nats.url, name: 'fault-test' });
  const dir = await mkdtemp(join(tmpdir(), 'prism-fault-'));
  const results = new Map<string, ResultEvent>();
  const dead = new Map<string, DeadLetter>();
  nc.subscribe('prism.results.>', {
    callback: (_e, m) => {
      const event = m.json<ResultEvent>();
      results.set(event.id, event);
    },
  });
  nc.subscribe('prism.dlq.>', {
    callback: (_e, m) => {
      const letter = m.json<DeadLetter>();
      dead.set(letter.id ?? '?', letter);
    },
  });
  const s: Scenario = {
    nats,
    emulator,
    nc,
    js: jetstream(nc),
    dir,
    storage: storageChoice?.storage ?? new FileStorage(join(dir, 'data')),
    nodes: [],
    results,
    dead,
    config: config(emulator.host),
    async addNode(name) {
      const node = await spawnNodeProcess({
        name,
        config: s.config,
        natsUrl: nats.url,
        storage: storageChoice?.url ?? `file:${join(dir, 'data')}`,
        dir,
        ...(storageChoice !== undefined ? { env: storageChoice.env } : {}),
      });
      s.nodes.push(node);
      return node;
    },
    async waitFor(ids, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (ids.some((id) => !results.has(id) && !dead.has(id))) {
        if (Date.now() > deadline) {
          const missing = ids.filter((id) => !results.has(id) && !dead.has(id));
          throw new Error(`${missing.length} jobs unfinished, e.g. ${missing.slice(0, 3).join(', ')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  stopStorage = storageChoice?.stop;
  current = s;
  return s;
}

afterEach(async () => {
  const s = current;
  current = undefined;
  if (s === undefined) return;
  for (const node of s.nodes)
    if (node.child.exitCode === null && node.child.signalCode === null) node.signal('SIGKILL');
  await Promise.all(s.nodes.map((n) => n.exited));
  await s.nc.close().catch(() => undefined);
  await s.emulator.close();
  await s.nats.stop();
  await s.storage.close();
  await stopStorage?.();
  stopStorage = undefined;
  if (process.env.PRISM_KEEP_FAULT_DIR === undefined) await rm(s.dir, { recursive: true, force: true });
  else console.log('kept', s.dir);
});

const nodeSettings = {
  concurrency: 64,
  ackWait: '3s',
  metricsInterval: '2s',
  backoffBase: 100,
  backoffMax: 1_000,
  maxAttempts: 8,
};

const manyAccounts = (host: string): PrismConfigInput => ({
  node: nodeSettings,
  sources: {
    adjust: {
      allowHosts: [host],
      limits: [{ key: '{source}/{account}', limit: 1, per: '200ms' }],
      apis: { report: { paginate: { next: 'next' } } },
    },
  },
});

async function publishMany(s: Scenario, n: number, accounts: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const acct = `acc-${i % accounts}`;
    ids.push(
      await publishJob(s.js, {
        id: `${prefix}-${i}`,
        source: 'adjust',
        api: 'report',
        account: acct,
        request: {
          url: `http://${s.emulator.host}/adjust/${acct}/report`,
          query: { pages: String(1 + (i % 3)) },
        },
      }),
    );
  }
  return ids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One node's figures over prism.ctl.status (every node answers; keep the one named). */
async function takerSnapshot(nc: NatsConnection, node: string): Promise<NodeSnapshot | undefined> {
  const replies = await nc
    .requestMany(STATUS_SUBJECT, '', { strategy: 'stall', stall: 50, maxWait: 300 })
    .catch(() => undefined);
  if (replies === undefined) return undefined;
  for await (const reply of replies) {
    const snapshot = reply.json<NodeSnapshot>();
    if (snapshot.node === node) return snapshot;
  }
  return undefined;
}

/** A node's ledger round trips divided by its calls. */
const perCall = (snap: NodeSnapshot | undefined) => {
  if (snap?.ledger === undefined || snap.calls.total === 0) return undefined;
  const per = (n: number): number => Math.round((n / snap.calls.total) * 100) / 100;
  return {
    reads: per(snap.ledger.reads),
    writes: per(snap.ledger.writes),
    conflicts: per(snap.ledger.conflicts),
  };
};

/** The smallest gaps the emulator saw on keys it counted violations for (to tell lag from a bug). */
const violatedGaps = (stats: EmulatorStats): number[] =>
  Object.values(stats.byKey)
    .filter((k) => k.violations > 0)
    .map((k) => Math.round(k.minGapMs ?? 0))
    .sort((a, b) => a - b)
    .slice(0, 10);

/** How a scenario ended, logged as one `fault (x)` line for docs/reliability.md. */
async function settle(
  s: Scenario,
  label: string,
  ids: string[],
  extra: Record<string, unknown>,
): Promise<{ outcome: Accounting; stats: EmulatorStats }> {
  const outcome = await account(s.nc, s.storage, ids, s.dead);
  const stats = await s.emulator.stats();
  console.log(
    `fault (${label})`,
    JSON.stringify({
      ...outcome,
      violations: stats.violations,
      violatedGaps: violatedGaps(stats),
      // The emulator stamps arrivals on its own event loop: a stall there narrows the gaps it sees.
      emulatorLoopDelayMaxMs: stats.loopDelayMaxMs,
      calls: stats.calls,
      ...extra,
    }),
  );
  return { outcome, stats };
}

describe('faults with real processes', () => {
  it('(a) three nodes, one killed with SIGKILL mid-run: nothing lost, no duplicates, no violations', async () => {
    const s = await scenario(
      { latencyMs: 20, limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 200 }] },
      manyAccounts,
    );
    for (const name of ['n1', 'n2', 'n3']) await s.addNode(name);
    const ids = await publishMany(s, 1500, 300, 'kill');
    while (s.results.size < 400) await sleep(50);
    s.nodes[1]!.signal('SIGKILL');
    const killedAt = Date.now();
    await s.waitFor(ids, 90_000);
    const afterKillSeconds = (Date.now() - killedAt) / 1000;
    // How long after their grants the survivors' calls left, against the KV ledger's allowance.
    const survivors = await Promise.all(['n1', 'n3'].map((node) => takerSnapshot(s.nc, node)));
    const { outcome, stats } = await settle(s, 'a', ids, {
      afterKillSeconds,
      sendLagMs: survivors.map((snap) => snap?.calls.sendLagMs),
      // How long a collector was busy per call, against the call itself.
      collectorTurnMs: survivors.map((snap) => snap?.collectors.turnMs),
      callLatencyMs: survivors.map((snap) => snap?.calls.latencyMs),
      lapsedSlots: survivors.map((snap) => snap?.calls.lapsedSlots),
      eventLoopDelayMs: survivors.map((snap) => snap?.eventLoopDelayMs),
      // KV round trips per call the survivors made (one rolling limit per call here).
      ledgerPerCall: survivors.map((snap) => perCall(snap)),
    });
    expect(outcome).toMatchObject({
      jobs: 1500,
      stored: 1500,
      lost: 0,
      duplicateResults: 0,
      strayObjects: 0,
    });
    expect(stats.violations).toBe(0);
    for (const snap of survivors) expect(snap?.calls.sendLagMs.maxEver).toBeGreaterThan(0);
    expect(await s.nodes[1]!.exited).toBe('SIGKILL');
  }, 150_000);

  it('(b) NATS killed and restarted mid-run: nothing lost, no duplicates, no violations', async () => {
    const s = await scenario(
      { latencyMs: 20, limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 200 }] },
      manyAccounts,
    );
    for (const name of ['n1', 'n2']) await s.addNode(name);
    const ids = await publishMany(s, 800, 200, 'nats');
    while (s.results.size < 200) await sleep(50);
    await s.nats.kill();
    await sleep(2_000);
    await s.nats.restart();
    const restartedAt = Date.now();
    await s.waitFor(ids, 90_000);
    const lines = s.nodes.flatMap((n) => n.logs());
    const crashes = lines.filter((l) => /crashed/.test(String(l.msg))).length;
    const waitedForLedger = lines.filter((l) => l.msg === 'ledger unavailable; the key waits').length;
    const { outcome, stats } = await settle(s, 'b', ids, {
      actorCrashes: crashes,
      waitedForLedger,
      afterRestartSeconds: (Date.now() - restartedAt) / 1000,
    });
    expect(outcome).toMatchObject({
      jobs: 800,
      lost: 0,
      deadLettered: 0,
      duplicateResults: 0,
      strayObjects: 0,
    });
    // An outage is waited out, not crashed through (a collector crashed three times by one job
    // would have dead-lettered it as poison).
    expect(crashes).toBe(0);
    expect(stats.violations).toBe(0);
  }, 150_000);

  it('(c) the S3 server stopped for 20 s mid-run: uploads wait and retry, nothing lost or doubled', async () => {
    const rgwDir = await mkdtemp(join(tmpdir(), 'prism-fault-rgw-'));
    const rgw = await startRgw(rgwDir);
    await createBucket(rgw, 'fault-c');
    const credentials = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
    const s = await scenario(
      { latencyMs: 20, limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 200 }] },
      manyAccounts,
      {
        url: 's3://fault-c/raw',
        env: {
          AWS_ENDPOINT_URL_S3: rgw.endpoint,
          AWS_REGION: rgw.region,
          AWS_ACCESS_KEY_ID: rgw.accessKeyId,
          AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
        },
        storage: new S3Storage('fault-c', 'raw', { endpoint: rgw.endpoint, credentials }),
        async stop() {
          await rgw.stop();
          await rm(rgwDir, { recursive: true, force: true });
        },
      },
    );
    for (const name of ['n1', 'n2']) await s.addNode(name);
    const ids = await publishMany(s, 600, 150, 's3down');
    while (s.results.size < 150) await sleep(50);
    await rgw.stop();
    const stoppedAt = Date.now();
    const doneWhenStopped = s.results.size;
    await sleep(20_000);
    // While storage is down no job may finish: a result event means an ack without its objects.
    const finishedWhileDown = s.results.size - doneWhenStopped;
    await rgw.start();
    const restartedAt = Date.now();
    await s.waitFor(ids, 120_000);
    const storageRetries = s.nodes
      .flatMap((n) => n.logs())
      .filter((l) => l.msg === 'storing a page failed; retrying').length;
    const { outcome, stats } = await settle(s, 'c', ids, {
      downSeconds: (restartedAt - stoppedAt) / 1000,
      finishedWhileDown,
      storageRetries,
      afterRestartSeconds: (Date.now() - restartedAt) / 1000,
    });
    expect(outcome).toMatchObject({
      jobs: 600,
      stored: 600,
      lost: 0,
      duplicateResults: 0,
      strayObjects: 0,
    });
    // Every job needs its pages stored before its result: none can finish while storage is down.
    expect(finishedWhileDown).toBe(0);
    expect(storageRetries).toBeGreaterThan(0);
    expect(stats.violations).toBe(0);
  }, 240_000);

  it('(d) SIGTERM drains: parked jobs reach another node at once, not after ack_wait', async () => {
    const s = await scenario(
      { latencyMs: 5, limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 300 }] },
      (host) => ({ ...manyAccounts(host), node: { ...nodeSettings, ackWait: '30s' } }),
    );
    const first = await s.addNode('draining');
    const ids = [];
    for (let i = 0; i < 20; i++) {
      ids.push(
        await publishJob(s.js, {
          id: `drain-${i}`,
          source: 'adjust',
          api: 'report',
          account: 'slow',
          request: { url: `http://${s.emulator.host}/adjust/slow/report` },
        }),
      );
    }
    while (s.results.size < 3) await sleep(20);
    const taker = await s.addNode('taker');
    first.signal('SIGTERM');
    const signalled = Date.now();
    // The handover itself: how soon the taker holds every job the draining node had parked
    // (it answers prism.ctl.status; the draining node stops answering once it has exited).
    const expected = ids.length - s.results.size;
    let handedOverSeconds = Number.NaN;
    while (Date.now() - signalled < 40_000) {
      const snapshot = await takerSnapshot(s.nc, 'taker');
      if (snapshot !== undefined && snapshot.jobs.received >= expected) {
        handedOverSeconds = (Date.now() - signalled) / 1000;
        break;
      }
      await sleep(25);
    }
    expect(await first.exited).toBe(0);
    const exitSeconds = (Date.now() - signalled) / 1000;
    await s.waitFor(ids, 40_000);
    const byTaker = ids.filter((id) => s.results.get(id)?.node === 'taker').length;
    console.log(
      'fault (d)',
      JSON.stringify({ exitSeconds, handedOverSeconds, handedOver: expected, byTaker }),
    );
    // ack_wait is 30 s: a handover that waited for it would take 30 s, not under 1.5.
    expect(handedOverSeconds).toBeLessThan(1.5);
    expect(byTaker).toBe(expected);
    expect(taker.logs().some((l) => l.msg === 'node started')).toBe(true);
    expect((await s.emulator.stats()).violations).toBe(0);
  }, 60_000);

  it('(e) a node killed in the middle of a paginated job: the next node resumes, each page fetched at most twice', async () => {
    const s = await scenario({ latencyMs: 50 }, (host) => ({
      node: { ...nodeSettings, ackWait: '2s' },
      sources: {
        meta: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '100ms' }],
          apis: { insights: { paginate: { next: 'paging.next' } } },
        },
      },
    }));
    const first = await s.addNode('first');
    const id = await publishJob(s.js, {
      id: 'long-paged',
      source: 'meta',
      api: 'insights',
      account: 'act_p',
      request: { url: `http://${s.emulator.host}/meta/act_p/insights`, query: { pages: '30' } },
    });
    const pagesSeen = async () =>
      Object.entries((await s.emulator.stats()).pageCalls).filter(([k]) =>
        k.startsWith('/meta/act_p/insights#'),
      );
    while ((await pagesSeen()).length < 12) await sleep(20);
    first.signal('SIGKILL');
    await first.exited;
    await s.addNode('second');
    await s.waitFor([id], 60_000);
    const result = s.results.get(id);
    const calls = await pagesSeen();
    const maxPerPage = Math.max(...calls.map(([, n]) => n));
    const refetched = calls.filter(([, n]) => n > 1).length;
    console.log(
      'fault (e)',
      JSON.stringify({ pages: result?.pages, node: result?.node, refetched, maxPerPage }),
    );
    expect(result).toMatchObject({ status: 'ok', pages: 30, node: 'second' });
    expect(result?.objects.map((o) => o.key.split('/').pop())).toEqual(
      Array.from({ length: 30 }, (_, i) => `page-${String(i).padStart(5, '0')}.json`),
    );
    expect(calls).toHaveLength(30);
    expect(maxPerPage).toBeLessThanOrEqual(2);
    expect(refetched).toBeLessThanOrEqual(1);
  }, 90_000);
});
