import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

/**
 * A platform (or whatever answers in its name) that turns hostile: bodies too large to hold,
 * redirects to the cloud metadata address, next-page links to hosts the source may not call.
 * Each job ends in the DLQ with the reason, the node keeps going, and the trap host sees nothing.
 */
describe('hostile answers from an allowed host', () => {
  let h: Harness;
  let hostile: Server;
  let trap: Server;
  let trapHits = 0;
  let hostileHost = '';
  let trapHost = '';

  const listen = async (server: Server): Promise<string> => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    trap = createServer((_req, res) => {
      trapHits++;
      res.end('{}');
    });
    trapHost = await listen(trap);
    hostile = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      res.setHeader('content-type', 'application/json');
      if (path.endsWith('/huge')) {
        // 64 KiB of JSON, in chunks, against a 16 KiB limit.
        res.write('{"data":"');
        for (let i = 0; i < 64; i++) res.write('x'.repeat(1024));
        res.end('"}');
      } else if (path.endsWith('/redirect')) {
        res.statusCode = 302;
        res.setHeader('location', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/');
        res.end();
      } else if (path.endsWith('/pivot')) {
        res.end(JSON.stringify({ data: [1], next: `http://${trapHost}/internal/admin` }));
      } else {
        res.end(JSON.stringify({ data: [1] }));
      }
    });
    hostileHost = await listen(hostile);
    h = await startHarness();
    await h.startNode({
      node: { maxBodyBytes: 16_384, maxAttempts: 1, backoffBase: 20, backoffMax: 50 },
      sources: {
        shady: { allowHosts: [hostileHost], apis: { report: { paginate: { next: 'next' } } } },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    hostile?.close();
    trap?.close();
  });

  it('dead-letters each with a clear reason, never calls the trap host, and keeps serving', async () => {
    const job = (name: string) =>
      h.publish({
        id: `hostile-${name}`,
        source: 'shady',
        api: 'report',
        account: name,
        request: { url: `http://${hostileHost}/shady/${name}` },
      });
    const huge = await job('huge');
    const redirect = await job('redirect');
    const pivot = await job('pivot');
    const fine = await job('fine');
    await h.waitFor([huge, redirect, pivot, fine], 15_000);
    expect(h.dead.get(huge)?.reason).toMatch(/response body exceeds 16384 bytes/);
    expect(h.dead.get(redirect)?.reason).toMatch(/HTTP 302 redirect not followed/);
    expect(h.dead.get(pivot)?.reason).toMatch(
      new RegExp(`next page http://${trapHost}/internal/admin: .*allowHosts`),
    );
    for (const id of [huge, redirect, pivot]) expect(h.dead.get(id)?.kind).toBe('rejected');
    expect(h.results.get(fine)).toMatchObject({ status: 'ok', pages: 1 });
    expect(trapHits).toBe(0);
    // The pivot's first page was fine and is stored; the huge body never reached storage.
    expect(await h.storage.list('shady/report/huge/')).toEqual([]);
  });
});
