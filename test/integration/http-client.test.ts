import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpFailure, UndiciHttpClient } from '../../src/http/http-client.ts';
import { busyFor } from '../helpers/busy.ts';

const now = (): number => performance.timeOrigin + performance.now();

/**
 * The HTTP client stops a call that could not leave by its `leaveBy` before a byte of it is
 * written: the KV ledger counts the call's slot only until then (RateLedger.sendAllowanceMs), so a
 * call written later could reach the platform too close to another node's next one.
 */
describe('UndiciHttpClient: calls that must leave by a time', () => {
  let server: Server;
  let url = '';
  let requests = 0;
  let bytesReceived = 0;
  let received = '';
  const client = new UndiciHttpClient();
  const options = { timeoutMs: 5_000, maxBodyBytes: 1_024 };

  beforeAll(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    // Bytes, not only parsed requests: a call cut off halfway would still show here.
    server.on('connection', (socket) =>
      socket.on('data', (chunk: Buffer) => {
        bytesReceived += chunk.length;
        received += chunk.toString('latin1');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/report`;
  });
  afterAll(async () => {
    await client.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends a call that is on time and says when it left', async () => {
    const sentAt: number[] = [];
    const before = now();
    const leaveBy = before + 2_000;
    const response = await client.send(
      { method: 'GET', url, headers: {} },
      { ...options, leaveBy, onSend: (at) => sentAt.push(at) },
    );
    expect(response.status).toBe(200);
    expect(requests).toBe(1);
    expect(sentAt).toHaveLength(1);
    expect(sentAt[0]).toBeGreaterThanOrEqual(before);
    expect(sentAt[0]).toBeLessThanOrEqual(leaveBy);
  });

  it('stops a call held up past its time before any byte reaches the server, on a kept-alive connection', async () => {
    const requestsBefore = requests;
    const bytesBefore = bytesReceived;
    const sentAt: number[] = [];
    const pending = client.send(
      { method: 'GET', url, headers: {} },
      { ...options, leaveBy: now() + 30, onSend: (at) => sentAt.push(at) },
    );
    // The event loop is stuck past the deadline before undici gets to write the request.
    busyFor(80);
    const failure = await pending.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(HttpFailure);
    expect((failure as HttpFailure).kind).toBe('late');
    expect((failure as HttpFailure).message).toMatch(/not sent/);
    expect(sentAt).toEqual([]);
    // Give a stray write time to arrive: none does.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests).toBe(requestsBefore);
    expect(bytesReceived).toBe(bytesBefore);
    // The client is fine afterwards: the next call goes through (on a new connection).
    const next = await client.send(
      { method: 'GET', url, headers: {} },
      { ...options, leaveBy: now() + 2_000 },
    );
    expect(next.status).toBe(200);
    expect(requests).toBe(requestsBefore + 1);
  });

  it('stops a POST with a body the same way, and a call without leaveBy is never stopped', async () => {
    const requestsBefore = requests;
    const bytesBefore = bytesReceived;
    const late = client.send(
      { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{"report":1}' },
      { ...options, leaveBy: now() + 20 },
    );
    const unbounded = client.send({ method: 'GET', url, headers: {} }, options);
    busyFor(60);
    await expect(late).rejects.toMatchObject({ kind: 'late' });
    expect((await unbounded).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests).toBe(requestsBefore + 1);
    // Only the GET arrived: no POST request line, no body.
    expect(bytesReceived).toBeGreaterThan(bytesBefore);
    expect(received).not.toContain('POST');
    expect(received).not.toContain('"report"');
  });
});
