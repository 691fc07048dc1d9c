import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UndiciHttpClient, type HttpClient } from '../../src/http/http-client.ts';
import { pendingJobs, startHarness, type Harness } from '../helpers/prism-harness.ts';

/** Node settings that keep the tests fast: short backoffs and timeouts. */
const fastNode = {
  backoffBase: 50,
  backoffMax: 200,
  requestTimeout: 500,
  maxAttempts: 3,
  metricsInterval: '1s',
  concurrency: 64,
};

describe('a node end to end (real NATS, emulator over HTTP, file storage)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ latencyMs: 5 });
    await h.startNode({
      node: fastNode,
      sources: {
        meta: {
          allowHosts: [h.host],
          limits: [
            { key: '{source}/{account}', limit: 1, per: '200ms' },
            { key: '{source}/{account}', limit: 3, per: '1s' },
          ],
          signals: [
            {
              name: 'meta-account-limit',
              match: { status: 400, body: { path: 'error.code', in: [17, [80000, 80014]] } },
              scope: '{source}/{account}',
              action: { type: 'pause', for: '300ms' },
            },
          ],
          apis: { insights: { paginate: { next: 'paging.next' } } },
        },
        tiktok: {
          allowHosts: [h.host],
          limits: [{ key: '{source}', limit: 5, per: '1s' }],
          signals: [
            {
              name: 'tiktok-qps',
              match: { status: 200, body: { path: 'code', in: [40100] } },
              scope: '{source}/{account}',
              action: { type: 'pause', for: '300ms' },
            },
          ],
          apis: {
            report: {
              paginate: {
                page: 'data.page_info.page',
                totalPages: 'data.page_info.total_page',
                param: 'page',
              },
            },
          },
        },
        adjust: { allowHosts: [h.host], apis: { report: { paginate: { next: 'next' } } } },
        // A Meta-style platform whose limit Prism is not told: only its usage headers.
        metausage: {
          allowHosts: [h.host],
          usage: { kind: 'meta', slowInterval: '700ms' },
          apis: { insights: {} },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('turns published jobs into stored pages and one result event each, in page order', async () => {
    const ids = [];
    for (let a = 1; a <= 3; a++) {
      ids.push(
        await h.publish({
          source: 'meta',
          api: 'insights',
          account: `act_${a}`,
          request: { url: `http://${h.host}/meta/act_${a}/insights`, query: { pages: '3', rows: '4' } },
          meta: { date: '2026-11-23' },
        }),
      );
    }
    await h.waitFor(ids);
    for (const id of ids) {
      const result = h.results.get(id);
      expect(result).toMatchObject({
        status: 'ok',
        pages: 3,
        attempts: 1,
        httpStatus: 200,
        node: 'test-node-1',
      });
      expect(result?.objects.map((o) => o.key.split('/').pop())).toEqual([
        'page-00000.json',
        'page-00001.json',
        'page-00002.json',
      ]);
      for (const object of result?.objects ?? []) {
        const body = await h.storage.get(object.key);
        expect(body?.length).toBe(object.bytes);
        expect(JSON.parse(body?.toString() ?? '{}').data).toHaveLength(4);
      }
    }
    // The ack follows the event it confirms by a moment.
    await expect.poll(() => pendingJobs(h.nc), { timeout: 5_000 }).toBe(0);
  });

  it('follows TikTok page numbers and generic next URLs', async () => {
    const tiktok = await h.publish({
      source: 'tiktok',
      api: 'report',
      account: 'adv_1',
      request: { url: `http://${h.host}/tiktok/adv_1/report`, query: { pages: '3' } },
    });
    const adjust = await h.publish({
      source: 'adjust',
      api: 'report',
      account: 'app.one',
      request: { url: `http://${h.host}/adjust/app.one/report`, query: { pages: '2' } },
    });
    await h.waitFor([tiktok, adjust]);
    expect(h.results.get(tiktok)?.pages).toBe(3);
    expect(h.results.get(adjust)).toMatchObject({ pages: 2, account: 'app.one' });
  });

  it('keeps limits of several shapes: zero violations at the emulator', async () => {
    h.emulator.setConfig({
      ...h.emulator.config(),
      limits: [
        { scope: 'account', platform: 'meta', limit: 1, perMs: 200 },
        { scope: 'account', platform: 'meta', limit: 3, perMs: 1000 },
        { scope: 'platform', platform: 'tiktok', limit: 5, perMs: 1000 },
      ],
    });
    h.emulator.reset();
    const ids = [];
    for (let i = 0; i < 6; i++) {
      for (const account of ['act_10', 'act_11']) {
        ids.push(
          await h.publish({
            id: `limits-${account}-${i}`,
            source: 'meta',
            api: 'insights',
            account,
            request: { url: `http://${h.host}/meta/${account}/insights` },
          }),
        );
      }
      // One source-wide limit shared by many accounts (and so by many throttle actors).
      for (let a = 0; a < 2; a++) {
        ids.push(
          await h.publish({
            id: `limits-tt-${a}-${i}`,
            source: 'tiktok',
            api: 'report',
            account: `adv_${20 + a}`,
            request: { url: `http://${h.host}/tiktok/adv_${20 + a}/report` },
          }),
        );
      }
    }
    await h.waitFor(ids, 20_000);
    const stats = h.emulator.stats();
    expect(ids.every((id) => h.results.has(id))).toBe(true);
    expect(stats.calls).toBeGreaterThanOrEqual(ids.length);
    expect(stats.violations).toBe(0);
    // 6 calls per meta account at 3/s need at least one full second: the limits really held them back.
    expect(stats.byKey['account:meta/act_10']?.minGapMs).toBeGreaterThanOrEqual(199);
  });

  it('pauses a key on the platform signal (Meta 400 code 17, TikTok 200 code 40100) and still finishes', async () => {
    h.emulator.setConfig({ ...h.emulator.config(), limits: [] });
    h.emulator.reset();
    const meta = await h.publish({
      id: 'signal-meta',
      source: 'meta',
      api: 'insights',
      account: 'act_30',
      request: { url: `http://${h.host}/meta/act_30/insights`, query: { throttle: '1', failTimes: '2' } },
    });
    const tiktok = await h.publish({
      id: 'signal-tiktok',
      source: 'tiktok',
      api: 'report',
      account: 'adv_30',
      request: { url: `http://${h.host}/tiktok/adv_30/report`, query: { throttle: '1', failTimes: '1' } },
    });
    await h.waitFor([meta, tiktok], 15_000);
    expect(h.results.get(meta)).toMatchObject({ status: 'ok', attempts: 1 });
    expect(h.results.get(tiktok)).toMatchObject({ status: 'ok', attempts: 1 });
    const calls = h.emulator.stats().byPath;
    expect(calls['/meta/act_30/insights']).toBe(3);
    expect(calls['/tiktok/adv_30/report']).toBe(2);
  });

  it('slows down on Meta usage headers before the wall, with no limit in the config', async () => {
    h.emulator.setConfig({
      ...h.emulator.config(),
      platforms: { ...h.emulator.config().platforms, metausage: { style: 'meta' } },
      limits: [{ scope: 'account', platform: 'metausage', limit: 4, perMs: 2_000 }],
    });
    h.emulator.reset();
    const ids = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        await h.publish({
          id: `usage-${i}`,
          source: 'metausage',
          api: 'insights',
          account: 'act_u',
          request: { url: `http://${h.host}/metausage/act_u/insights` },
        }),
      );
    }
    await h.waitFor(ids, 20_000).catch((e) => {
      if (process.env.DEBUG_USAGE)
        console.log(
          h.logs[0]?.lines
            .filter((l) => /usage|paus|slow|spill|retry|dead/i.test(l))
            .slice(-30)
            .join(''),
          JSON.stringify(h.nodes[0]?.snapshot().mostDelayed),
        );
      throw e;
    });
    const stats = h.emulator.stats();
    expect(ids.every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    // Without reading the headers, 8 quick calls would break "4 per 2 s" four times.
    expect(stats.violations).toBe(0);
    expect(stats.throttled).toBe(0);
    expect(stats.calls).toBe(8);
  });

  it('honours 429 + Retry-After, and RateLimit-Remaining: 0 before any 429', async () => {
    h.emulator.setConfig({ ...h.emulator.config(), limits: [] });
    h.emulator.reset();
    // A 429 with Retry-After: 1.5 s: the key waits that long, then the same job succeeds.
    const started = Date.now();
    const once = await h.publish({
      id: 'r429-once',
      source: 'adjust',
      api: 'report',
      account: 'app-429',
      request: {
        url: `http://${h.host}/adjust/app-429/report`,
        query: { throttle: '1', failTimes: '1', retryAfter: '1500' },
      },
    });
    await h.waitFor([once], 15_000);
    expect(h.results.get(once)).toMatchObject({ status: 'ok', attempts: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(h.emulator.stats().byPath['/adjust/app-429/report']).toBe(2);

    // A limit the config does not know, announced by RateLimit-* headers: the key pauses when
    // Remaining reaches 0, so the platform never has to answer 429.
    h.emulator.setConfig({
      ...h.emulator.config(),
      limits: [{ scope: 'account', platform: 'adjust', limit: 1, perMs: 1000 }],
    });
    h.emulator.reset();
    const ids = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        await h.publish({
          id: `r429-${i}`,
          source: 'adjust',
          api: 'report',
          account: 'app-rl',
          request: { url: `http://${h.host}/adjust/app-rl/report` },
        }),
      );
    await h.waitFor(ids, 15_000);
    expect(ids.every((id) => h.results.get(id)?.status === 'ok')).toBe(true);
    expect(h.emulator.stats()).toMatchObject({ calls: 3, throttled: 0, violations: 0 });
  });

  it('retries 5xx with backoff and counts attempts; dead-letters after the attempts', async () => {
    h.emulator.setConfig({ ...h.emulator.config(), limits: [] });
    const flaky = await h.publish({
      id: 'flaky-500',
      source: 'adjust',
      api: 'report',
      account: 'app-5xx',
      request: { url: `http://${h.host}/adjust/app-5xx/report`, query: { fail: '503', failTimes: '2' } },
    });
    const broken = await h.publish({
      id: 'always-500',
      source: 'adjust',
      api: 'report',
      account: 'app-5xx-2',
      request: { url: `http://${h.host}/adjust/app-5xx-2/report`, query: { fail: '500' } },
    });
    await h.waitFor([flaky, broken], 15_000);
    expect(h.results.get(flaky)).toMatchObject({ status: 'ok', attempts: 3 });
    expect(h.dead.get(broken)).toMatchObject({
      kind: 'failed',
      attempts: 3,
      reason: expect.stringMatching(/HTTP 500.*after 3 attempts/),
    });
  });

  it('times out hanging calls and dead-letters them with the reason', async () => {
    const hanging = await h.publish({
      id: 'hang',
      source: 'adjust',
      api: 'report',
      account: 'app-hang',
      request: { url: `http://${h.host}/adjust/app-hang/report`, query: { hang: '1' } },
    });
    await h.waitFor([hanging], 20_000);
    expect(h.dead.get(hanging)?.reason).toMatch(/timeout/);
  });

  it('dead-letters invalid jobs with a clear reason and keeps going', async () => {
    const bad: Array<[string, string]> = [
      ['prism.jobs.meta.insights.act_1', '{not json'],
      ['prism.jobs.meta.insights.act_1', JSON.stringify({ request: { url: 'https://evil.example/' } })],
      ['prism.jobs.nosuch.api.acc', JSON.stringify({ request: { url: `http://${h.host}/x` } })],
      [
        'prism.jobs.meta.insights.act_1',
        JSON.stringify({
          request: {
            url: `http://${h.host}/meta/act_1/insights`,
            headers: { Authorization: 'Bearer LEAKME' },
          },
        }),
      ],
    ];
    const before = h.deadLog.length;
    for (const [subject, body] of bad) await h.js.publish(subject, body);
    // Not UTF-8: the node keeps its bytes (every other job it keeps as text) and says why.
    await h.js.publish('prism.jobs.meta.insights.act_1', new Uint8Array([0x7b, 0xff, 0x7d]));
    const good = await h.publish({
      id: 'after-bad',
      source: 'adjust',
      api: 'report',
      account: 'app-ok',
      request: { url: `http://${h.host}/adjust/app-ok/report` },
    });
    await h.waitFor([good]);
    await expect.poll(() => h.deadLog.length - before, { timeout: 5_000 }).toBe(5);
    const letters = h.deadLog.slice(before);
    const reasons = letters.map((d) => d.reason);
    // The original as published, and its size in bytes, whether kept as text or as bytes.
    expect(letters.find((d) => /malformed JSON/.test(d.reason))).toMatchObject({
      original: '{not json',
      originalBytes: 9,
    });
    expect(letters.find((d) => d.reason === 'job is not valid UTF-8')).toMatchObject({
      original: '{\ufffd}',
      originalBytes: 3,
    });
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/malformed JSON/),
        expect.stringMatching(/allowHosts/),
        expect.stringMatching(/unknown source "nosuch"/),
        expect.stringMatching(/credential/),
      ]),
    );
    expect(h.deadLog.slice(before).every((d) => d.kind === 'invalid')).toBe(true);
    // The ack follows the event it confirms by a moment.
    await expect.poll(() => pendingJobs(h.nc), { timeout: 5_000 }).toBe(0);
  });
});

/** An HTTP client with a bug: it throws (not an HttpFailure) for chosen URLs, crashing the collector. */
class BuggyHttp implements HttpClient {
  private readonly real = new UndiciHttpClient();
  crashesLeft = new Map<string, number>();
  get inFlight() {
    return this.real.inFlight;
  }
  send: HttpClient['send'] = (req, options) => {
    for (const [fragment, left] of this.crashesLeft) {
      if (req.url.includes(fragment) && left > 0) {
        this.crashesLeft.set(fragment, left - 1);
        throw new TypeError(`bug while calling ${fragment}`);
      }
    }
    return this.real.send(req, options);
  };
  close = () => this.real.close();
}

describe('supervision: an actor that throws is restarted and its job is not lost', () => {
  let h: Harness;
  const http = new BuggyHttp();

  beforeAll(async () => {
    h = await startHarness();
    await h.startNode(
      { node: fastNode, sources: { adjust: { allowHosts: [h.host], apis: { report: {} } } } },
      { http },
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  it('retries a job whose collector crashed once, and dead-letters a poison job', async () => {
    http.crashesLeft.set('/adjust/crash-once/', 1);
    http.crashesLeft.set('/adjust/poison/', 1000);
    const once = await h.publish({
      id: 'crash-once',
      source: 'adjust',
      api: 'report',
      account: 'crash-once',
      request: { url: `http://${h.host}/adjust/crash-once/report` },
    });
    const poison = await h.publish({
      id: 'poison',
      source: 'adjust',
      api: 'report',
      account: 'poison',
      request: { url: `http://${h.host}/adjust/poison/report` },
    });
    const normal = await h.publish({
      id: 'normal',
      source: 'adjust',
      api: 'report',
      account: 'normal',
      request: { url: `http://${h.host}/adjust/normal/report` },
    });
    await h.waitFor([once, poison, normal], 20_000);
    expect(h.results.get(once)).toMatchObject({ status: 'ok', attempts: 2 });
    expect(h.results.get(normal)).toMatchObject({ status: 'ok' });
    expect(h.dead.get(poison)).toMatchObject({
      kind: expect.stringMatching(/poison|failed/),
      reason: expect.stringMatching(/bug while calling/),
    });
    expect(h.nodes[0]?.snapshot().restarts).toBeGreaterThanOrEqual(2);
    // A crash frees its collector once: every collector is idle again, none counted twice (a
    // collector freed twice sat in the pool twice, and the busy count went below zero).
    const node = h.nodes[0]!;
    const settled = Date.now() + 5_000;
    while (node.snapshot().collectors.busy > 0 && Date.now() < settled)
      await new Promise((r) => setTimeout(r, 10));
    const collectors = node.snapshot().collectors;
    expect(collectors.busy).toBe(0);
    expect(collectors.idle).toBe(collectors.total);
  });
});

/**
 * A node of its own with one collector and a buggy HTTP client, for the describe that calls it:
 * the pool has no other collector to hand a call to, and what it knows of that one shows.
 */
function nodeWithOneBuggyCollector(): { harness: () => Harness; http: BuggyHttp } {
  let h: Harness | undefined;
  const http = new BuggyHttp();
  beforeAll(async () => {
    h = await startHarness();
    await h.startNode(
      {
        node: { ...fastNode, concurrency: 1 },
        sources: { adjust: { allowHosts: [h.host], apis: { report: {} } } },
      },
      { http },
    );
  });
  afterAll(async () => {
    await h?.close();
  });
  return { harness: () => h!, http };
}

describe('supervision: a crashed collector takes calls again only once it has restarted', () => {
  const { harness, http } = nodeWithOneBuggyCollector();

  it('stays busy through its restart backoff instead of being handed the next call to hold', async () => {
    const h = harness();
    // 7 crashes of the one collector within a minute: its backoffs grow 10, 20, …, 640 ms.
    http.crashesLeft.set('/adjust/crashy-', 7);
    const node = h.nodes[0]!;
    /** Per crash (the node's restart count), whether the pool saw the collector free within 50 ms. */
    const freeSoonAfter = new Map<number, boolean>();
    let sampling = true;
    const sampler = (async () => {
      let seen = node.snapshot().restarts;
      let since = 0;
      while (sampling) {
        const snap = node.snapshot();
        if (snap.restarts !== seen) {
          seen = snap.restarts;
          since = Date.now();
          freeSoonAfter.set(seen, false);
        }
        if (seen > 0 && Date.now() - since <= 50 && snap.collectors.idle > 0) freeSoonAfter.set(seen, true);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    // One job at a time, so no call waits in the pool when the collector crashes: freed at the
    // crash, as before, the pool listed it idle at once (and would hand it the next call to hold
    // through the backoff while other collectors sat idle).
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const id = await h.publish({
        id: `crashy-${i}`,
        source: 'adjust',
        api: 'report',
        account: `crashy-${i}`,
        request: { url: `http://${h.host}/adjust/crashy-${i}/report` },
      });
      ids.push(id);
      await h.waitFor([id], 20_000);
    }
    sampling = false;
    await sampler;
    // Jobs 1 and 2 crashed on each of their 3 attempts; job 3 once, then finished.
    expect(h.dead.get(ids[0]!)).toMatchObject({ reason: expect.stringMatching(/bug while calling/) });
    expect(h.dead.get(ids[1]!)).toMatchObject({ reason: expect.stringMatching(/bug while calling/) });
    expect(h.results.get(ids[2]!)).toMatchObject({ status: 'ok', attempts: 2 });
    expect(node.snapshot().restarts).toBe(7);
    // Crashes 5 to 7 had backoffs of 160, 320 and 640 ms: not free within 50 ms of any of them.
    expect([5, 6, 7].map((crash) => [crash, freeSoonAfter.get(crash)])).toEqual([
      [5, false],
      [6, false],
      [7, false],
    ]);
    // And free again after each restart: the collector ends idle, listed once.
    await expect
      .poll(() => node.snapshot().collectors, { timeout: 5_000 })
      .toMatchObject({ busy: 0, idle: 1 });
  });
});

describe('supervision: a collector stopped after repeated crashes is replaced', () => {
  const { harness, http } = nodeWithOneBuggyCollector();

  it('keeps the node collecting after its only collector crashed more than 20 times in a minute', async () => {
    const h = harness();
    // A collector is stopped at its 21st crash within 60 s (collector.ts: maxCrashes 20); with
    // its restart backoffs (up to 2 s each) that takes ~30 s on the node's one collector.
    http.crashesLeft.set('/adjust/boom-', 21);
    const ids: string[] = [];
    for (let i = 1; i <= 8; i++)
      ids.push(
        await h.publish({
          id: `boom-${i}`,
          source: 'adjust',
          api: 'report',
          account: `boom-${i}`,
          request: { url: `http://${h.host}/adjust/boom-${i}/report` },
        }),
      );
    await h.waitFor(ids, 60_000);
    expect(http.crashesLeft.get('/adjust/boom-')).toBe(0);
    const node = h.nodes[0]!;
    expect(node.snapshot().restarts).toBe(21);
    // Every job ended: 3 crashes make a job poison; any job with a crash to spare finished.
    for (const id of ids) expect(h.dead.get(id)?.kind ?? h.results.get(id)?.status).toMatch(/poison|ok/);
    // A job after it all is collected by the new collector, which then sits idle in the pool.
    const after = await h.publish({
      id: 'after-boom',
      source: 'adjust',
      api: 'report',
      account: 'calm',
      request: { url: `http://${h.host}/adjust/calm/report` },
    });
    await h.waitFor([after], 10_000);
    expect(h.results.get(after)).toMatchObject({ status: 'ok', attempts: 1 });
    await expect
      .poll(() => node.snapshot().collectors, { timeout: 5_000 })
      .toMatchObject({ busy: 0, idle: 1 });
  }, 90_000);
});
