import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINTS_BUCKET } from '../../src/bus/checkpoints.ts';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

const SECRET = 'EAAB-planted-secret-7f3a9c';

describe('no secret leaks: a planted token is nowhere but on the wire', () => {
  let h: Harness;
  const checkpointsSeen: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ requireBearer: SECRET });
    await h.startNode(
      {
        node: { maxAttempts: 2, backoffBase: 20, backoffMax: 50, concurrency: 8 },
        sources: {
          meta: {
            allowHosts: [h.host],
            // As Meta allows: the token as a query parameter, which Meta echoes into paging.next.
            auth: {
              'meta-default': { type: 'query', param: 'access_token', tokenEnv: 'PLANTED_META_TOKEN' },
            },
            apis: { insights: { paginate: { next: 'paging.next' } } },
          },
        },
      },
      { env: { PLANTED_META_TOKEN: SECRET } },
    );
    const kv = await new Kvm(h.nc).open(CHECKPOINTS_BUCKET);
    const watch = await kv.watch();
    void (async () => {
      for await (const entry of watch) if (entry.operation === 'PUT') checkpointsSeen.push(entry.string());
    })();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keeps the token out of logs, result events, dead letters, checkpoints and stored objects', async () => {
    const paged = await h.publish({
      id: 'secret-paged',
      source: 'meta',
      api: 'insights',
      account: 'act_s',
      auth: 'meta-default',
      request: { url: `http://${h.host}/meta/act_s/insights`, query: { pages: '3' } },
    });
    const failing = await h.publish({
      id: 'secret-failing',
      source: 'meta',
      api: 'insights',
      account: 'act_f',
      auth: 'meta-default',
      request: { url: `http://${h.host}/meta/act_f/insights`, query: { fail: '500' } },
    });
    // A careless producer pastes the token into a job: rejected, and its dead letter must not carry it.
    const pasted = await h.publish({
      id: 'secret-pasted',
      source: 'meta',
      api: 'insights',
      account: 'act_p',
      request: {
        url: `http://${h.host}/meta/act_p/insights?access_token=${SECRET}`,
        headers: { Authorization: `Bearer ${SECRET}` },
      },
    });
    await h.waitFor([paged, failing, pasted], 20_000);

    expect(h.results.get(paged)).toMatchObject({ status: 'ok', pages: 3 });
    expect(h.dead.get(failing)?.kind).toBe('failed');
    expect(h.dead.get(pasted)?.kind).toBe('invalid');
    // The token was really used: the emulator refuses calls without it.
    expect(h.emulator.stats().unauthorized).toBe(0);
    expect(checkpointsSeen.length).toBeGreaterThanOrEqual(2);

    const places: Array<[string, string]> = [
      ['logs', h.logs.map((l) => l.text()).join('')],
      ['result events', JSON.stringify(h.resultLog)],
      ['dead letters', JSON.stringify(h.deadLog)],
      ['checkpoints', checkpointsSeen.join('\n')],
    ];
    for (const object of h.results.get(paged)?.objects ?? []) {
      places.push([`object ${object.key}`, (await h.storage.get(object.key))?.toString() ?? '']);
    }
    for (const [where, text] of places) {
      expect(text.length, where).toBeGreaterThan(0);
      expect(text.includes(SECRET), `secret found in ${where}`).toBe(false);
    }
  });
});
