import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyBudget } from '../../src/http/body-budget.ts';
import { HttpFailure, UndiciHttpClient, type HttpResponse } from '../../src/http/http-client.ts';
import type { ObjectStorage } from '../../src/storage/storage.ts';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

const KiB = 1_024;
const MiB = 1_024 * KiB;
const CHUNK = 64 * KiB;

/** A platform that answers every call with `/bytes/<n>`'s n bytes of JSON, written in 64 KiB chunks. */
function bodyServer(): Server {
  return createServer((req, res) => {
    const size = Number(new URL(req.url ?? '/', 'http://x').pathname.split('/').pop());
    res.setHeader('content-type', 'application/json');
    const filler = size - '{"data":""}'.length;
    res.write('{"data":"');
    let written = 0;
    const more = (): void => {
      while (written < filler) {
        const n = Math.min(CHUNK, filler - written);
        written += n;
        if (!res.write('x'.repeat(n))) return void res.once('drain', more);
      }
      res.end('"}');
    };
    more();
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const until = async (what: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/**
 * The node's budget for response bytes held at once, with undici reading real sockets: calls
 * beyond it stop reading (the platform's bytes wait in the socket) until earlier bodies are
 * released, the oldest always reads on, and a call that waits past its timeout fails as one.
 */
describe('UndiciHttpClient with a body budget', () => {
  let server: Server;
  let host = '';

  beforeAll(async () => {
    server = bodyServer();
    host = await listen(server);
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('holds at most the budget plus one body, and every call completes as bodies are released', async () => {
    const budget = new BodyBudget(2 * MiB);
    const client = new UndiciHttpClient({ bodies: budget });
    try {
      const answered: HttpResponse[] = [];
      const calls = Array.from({ length: 6 }, () =>
        client
          .send(
            { method: 'GET', url: `http://${host}/bytes/${MiB}`, headers: {} },
            { timeoutMs: 20_000, maxBodyBytes: 2 * MiB },
          )
          .then((response) => answered.push(response)),
      );
      // Nothing is released yet: some calls read their whole body, the others stop and wait.
      await until(() => answered.length >= 2 && budget.waitingCount >= 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered.length).toBeLessThan(6);
      expect(budget.waits).toBeGreaterThan(0);
      const bound = 2 * MiB + MiB + 6 * CHUNK;
      expect(budget.held).toBeLessThanOrEqual(bound);
      // Stored one by one: each release lets the readers behind it go on, until all are done.
      let released = 0;
      while (released < 6) {
        await until(() => answered.length > released);
        (answered[released] as HttpResponse).release();
        released++;
      }
      await Promise.all(calls);
      for (const response of answered) expect(response.body.length).toBe(MiB);
      expect(budget.peak).toBeLessThanOrEqual(bound);
      expect(budget.held).toBe(0);
      expect(budget.openCount).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('fails a call that waits for room past its timeout, and frees what it had read', async () => {
    const budget = new BodyBudget(256 * KiB);
    const client = new UndiciHttpClient({ bodies: budget });
    try {
      const first = await client.send(
        { method: 'GET', url: `http://${host}/bytes/${MiB}`, headers: {} },
        { timeoutMs: 5_000, maxBodyBytes: 2 * MiB },
      );
      // The oldest read its whole body over the budget; the next call cannot.
      expect(budget.held).toBe(MiB);
      const started = Date.now();
      const second = client.send(
        { method: 'GET', url: `http://${host}/bytes/${MiB}`, headers: {} },
        { timeoutMs: 600, maxBodyBytes: 2 * MiB },
      );
      await expect(second).rejects.toSatisfy(
        (error: unknown) => error instanceof HttpFailure && error.kind === 'timeout',
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      expect(budget.waits).toBe(1);
      expect(budget.waitingCount).toBe(0);
      expect(budget.held).toBe(MiB);
      first.release();
      expect(budget.held).toBe(0);
      expect(budget.openCount).toBe(0);
    } finally {
      await client.close();
    }
  });
});

/** Storage that takes `delayMs` per page: bodies pile up in the node unless something bounds them. */
class SlowStorage implements ObjectStorage {
  readonly location: string;
  private readonly inner: ObjectStorage;
  private readonly delayMs: number;
  constructor(inner: ObjectStorage, delayMs: number) {
    this.inner = inner;
    this.delayMs = delayMs;
    this.location = inner.location;
  }
  put: ObjectStorage['put'] = async (key, body, contentType) => {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return this.inner.put(key, body, contentType);
  };
  get: ObjectStorage['get'] = (key) => this.inner.get(key);
  list: ObjectStorage['list'] = (prefix) => this.inner.list(prefix);
  close = (): Promise<void> => Promise.resolve();
}

describe('a node with slow storage and large pages', () => {
  let h: Harness;
  let server: Server;
  let host = '';

  beforeAll(async () => {
    server = bodyServer();
    host = await listen(server);
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
    server?.close();
  });

  it('keeps the bodies it holds within maxBodyBytesHeld and stores every page whole', async () => {
    const page = 512 * KiB;
    const node = await h.startNode(
      {
        node: { concurrency: 8, maxBodyBytesHeld: MiB, maxBodyBytes: 2 * MiB, ledger: 'memory' },
        sources: { big: { allowHosts: [host], apis: { report: {} } } },
      },
      { storage: new SlowStorage(h.storage, 300) },
    );
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        h.publish({
          id: `big-${i}`,
          source: 'big',
          api: 'report',
          account: `acct_${i}`,
          request: { url: `http://${host}/bytes/${page}` },
        }),
      ),
    );
    await h.waitFor(ids, 30_000);
    for (const id of ids) {
      const result = h.results.get(id);
      expect(result).toMatchObject({ status: 'ok', pages: 1 });
      expect(result?.objects[0]?.bytes).toBe(page);
    }
    const bodies = node.snapshot().collectors.bodies;
    // Eight 512 KiB bodies at once would be 4 MiB held while storage is slow.
    expect(bodies?.waits).toBeGreaterThan(0);
    expect(bodies?.peakBytes).toBeLessThanOrEqual(MiB + page + 8 * CHUNK);
    expect(bodies?.heldBytes).toBe(0);
    expect(bodies?.limitBytes).toBe(MiB);
  });
});
