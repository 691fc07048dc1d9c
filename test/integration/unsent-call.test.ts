import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preciseNow, type NodeServices } from '../../src/actors/services.ts';
import type { JobMessage } from '../../src/bus/job-message.ts';
import { connectNats } from '../../src/bus/nats-connection.ts';
import { collectPage } from '../../src/collect/collect-page.ts';
import { CredentialStore } from '../../src/config/credentials.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { UndiciHttpClient, type HttpClient } from '../../src/http/http-client.ts';
import { KvLedger } from '../../src/limits/kv-ledger.ts';
import { limitChecksFor, templateVars } from '../../src/limits/limit-keys.ts';
import type { Job } from '../../src/messages/job.ts';
import type { Work } from '../../src/messages/work.ts';
import { NodeStats } from '../../src/runtime/node-stats.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { busyFor } from '../helpers/busy.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';

/** The real HTTP client, on a node whose event loop is stuck just after handing it a call. */
class StuckAfterHandOver implements HttpClient {
  readonly real = new UndiciHttpClient();
  stuckMs = 0;
  send: HttpClient['send'] = (request, options) => {
    const sending = this.real.send(request, options);
    busyFor(this.stuckMs);
    return sending;
  };
  get inFlight(): number {
    return this.real.inFlight;
  }
  close(): Promise<void> {
    return this.real.close();
  }
}

/** Services a call stopped before it leaves never reaches: any use fails the test. */
function unused<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get: (_target, property) => {
      throw new Error(`an unsent call used ${name}.${String(property)}`);
    },
  });
}

/**
 * A call the HTTP client stops before any byte leaves (it could not be written by the latest time
 * its slot allowed) gives its slot back: the key may call again at once, on any node, instead of a
 * whole window after that latest time.
 */
describe('a call stopped before it left', () => {
  let nats: NatsServerHandle;
  let server: Server;
  let requests = 0;
  const connections: NatsConnection[] = [];
  const ledgers: KvLedger[] = [];
  const http = new StuckAfterHandOver();

  beforeAll(async () => {
    nats = await startNatsServer();
    for (let i = 0; i < 2; i++) {
      const nc = await connectNats({ url: nats.url, name: `unsent-${i}` });
      connections.push(nc);
      ledgers.push(await KvLedger.open(nc, { marginMs: 0, sendAllowanceMs: 50, concurrencyPollMs: 20 }));
    }
    server = createServer((_req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json');
      res.end('{"data":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await http.close();
    for (const ledger of ledgers) await ledger.close();
    for (const nc of connections) await nc.close();
    await nats?.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives its slot back, so the key calls again at once, from any node', async () => {
    const [a, b] = ledgers as [KvLedger, KvLedger];
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = ConfigSchema.parse({
      node: { ledger: 'nats-kv', sendAllowance: '50ms' },
      sources: {
        strict: {
          allowHosts: [host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '5s' }],
          apis: { report: {} },
        },
      },
    });
    const services: NodeServices = {
      config,
      nodeName: 'a',
      log: pino({ level: 'silent' }),
      ledger: a,
      scheduler: new Scheduler(preciseNow),
      http,
      storage: unused('storage'),
      publisher: unused('publisher'),
      attempts: unused('attempts'),
      checkpoints: unused('checkpoints'),
      credentials: new CredentialStore(config, {}),
      stats: new NodeStats(),
      now: preciseNow,
    };
    const job: Job = {
      id: 'unsent-1',
      source: 'strict',
      api: 'report',
      account: 'act_1',
      request: { method: 'GET', url: `http://${host}/report`, query: {}, headers: {}, body: null },
      meta: {},
    };
    const limits = limitChecksFor(
      config.sources.strict!,
      config.sources.strict!.apis.report!,
      templateVars(job, 'a'),
    );
    if (!limits.ok) throw new Error(limits.reason);
    const checks = limits.checks;
    const slot = await a.reserve(checks, preciseNow());
    if (!slot.granted) throw new Error('expected a slot');
    const work: Work = {
      job,
      key: 'strict.report.act_1',
      message: unused<JobMessage>('message'),
      checks,
      pauseKeys: undefined,
      attempt: 1,
      page: 0,
      request: job.request,
      objects: [],
      startedAt: preciseNow(),
      throttled: 0,
      reservation: slot.id,
      reservedAt: slot.at,
      reservedChecks: undefined,
      lastStatus: undefined,
    };

    // The node's loop is stuck for longer than the allowance right after the call is handed over.
    http.stuckMs = 120;
    const outcome = await collectPage(work, services);
    expect(outcome.kind).toBe('slot-lapsed');
    expect(services.stats.lapsedSlots).toBe(1);
    expect(services.stats.calls).toBe(0);
    expect(work.reservation).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(requests).toBe(0);

    // Counted, the stopped call would hold the key until its latest time + 5 s. Given back, another
    // node's call goes at once, and then holds the key for the whole window on both nodes.
    const other = await b.reserve(checks, preciseNow());
    expect(other.granted).toBe(true);
    expect(await a.reserve(checks, preciseNow())).toMatchObject({
      granted: false,
      blockedBy: 'strict/act_1|5000',
    });
  });
});
