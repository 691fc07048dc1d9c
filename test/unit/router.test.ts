import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  spawnActor,
  spawnSupervisor,
  startActorSystem,
  stopActorSystem,
  tell,
  type ParentRef,
} from '../../src/actors/nact-typed.ts';
import type { ThrottleRef } from '../../src/actors/refs.ts';
import { spawnRouter } from '../../src/actors/router.ts';
import type { NodeServices } from '../../src/actors/services.ts';
import type { JobMessage } from '../../src/bus/job-message.ts';
import { CredentialStore } from '../../src/config/credentials.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import { jobSubject } from '../../src/messages/subject.ts';
import type { ThrottleMessage } from '../../src/messages/throttle-messages.ts';
import type { Work } from '../../src/messages/work.ts';
import { NodeStats } from '../../src/runtime/node-stats.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';

/** The real router actor; each key's "throttle" is a real actor that keeps the works it gets. */

class FirstDelivery implements JobMessage {
  readonly msgId = undefined;
  readonly deliveryCount = 1;
  readonly streamSeq = 0;
  readonly settled = false;
  readonly subject: string;
  readonly data: Uint8Array;
  constructor(account: string, meta: Record<string, unknown>) {
    this.subject = jobSubject({ source: 'flyer', api: 'installs', account });
    this.data = new TextEncoder().encode(
      JSON.stringify({ request: { url: 'https://api.example.com/installs' }, meta }),
    );
  }
  async ack(): Promise<void> {}
  nak(): void {}
  working(): void {}
}

/** Services the router must not touch for first deliveries of valid jobs: any use fails loudly. */
const unused = <T extends object>(name: string): T =>
  new Proxy({} as T, {
    get: (_target, property) => {
      throw new Error(`the router used ${name}.${String(property)}`);
    },
  });

let system: ParentRef | undefined;
afterEach(() => {
  if (system !== undefined) stopActorSystem(system);
  system = undefined;
});

describe('router', () => {
  it("works out a key's checks and pause keys once: its later jobs share them, other keys and apps do not", async () => {
    const config = ConfigSchema.parse({
      node: { ledger: 'memory' },
      sources: {
        flyer: {
          allowHosts: ['api.example.com'],
          limits: [
            { key: '{source}/{account}', limit: 1, per: 1000 },
            { key: '{source}/{meta.app_id}', limit: 1, per: 60_000 },
          ],
          apis: { installs: {} },
        },
      },
    });
    const services: NodeServices = {
      config,
      nodeName: 'n1',
      log: pino({ level: 'silent' }),
      ledger: new MemoryLedger(),
      scheduler: new Scheduler(),
      http: unused('http'),
      storage: unused('storage'),
      publisher: unused('publisher'),
      attempts: unused('attempts'),
      checkpoints: unused('checkpoints'),
      credentials: new CredentialStore(config, {}),
      stats: new NodeStats(),
      now: Date.now,
    };
    system = startActorSystem('t-router');
    const throttles = spawnSupervisor(system, 'throttles', () => {});
    const received = new Map<string, Work[]>();
    let spawned = 0;
    const router = spawnRouter(system, {
      services,
      spawnThrottle: (key) => {
        const works: Work[] = [];
        received.set(key, works);
        return spawnActor<undefined, ThrottleMessage>(throttles, {
          name: `throttle-${++spawned}`,
          initialState: () => undefined,
          receive: (state, message) => {
            if (message.type === 'enqueue') works.push(message.work);
            return state;
          },
          supervision: {
            restart: 'resume',
            backoffBaseMs: 1,
            backoffMaxMs: 1,
            maxCrashes: 1,
            windowMs: 1_000,
            onCrash: () => {},
          },
        }) as ThrottleRef;
      },
    });
    const deliveries = [
      new FirstDelivery('acc_1', { app_id: 'A' }),
      new FirstDelivery('acc_1', { app_id: 'A', day: '2026-11-30' }),
      new FirstDelivery('acc_1', { app_id: 'A' }),
      new FirstDelivery('acc_1', { app_id: 'B' }),
      new FirstDelivery('acc_2', { app_id: 'A' }),
    ];
    for (const message of deliveries) tell(router, { type: 'job', message });
    const deadline = Date.now() + 2_000;
    const count = (): number => [...received.values()].reduce((n, works) => n + works.length, 0);
    while (count() < deliveries.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));

    expect([...received.keys()].sort()).toEqual([
      'flyer.installs.acc_1/app_id=A',
      'flyer.installs.acc_1/app_id=B',
      'flyer.installs.acc_2/app_id=A',
    ]);
    const [first, second, third] = received.get('flyer.installs.acc_1/app_id=A') as Work[];
    expect(first?.checks.map((c) => c.key)).toEqual(['flyer/acc_1|1000', 'flyer/A|60000']);
    // The same objects, not equal copies: the ledger remembers a key's windows on them.
    expect(second?.checks).toBe(first?.checks);
    expect(third?.checks).toBe(first?.checks);
    expect(second?.pauseKeys).toBe(first?.pauseKeys);
    // Each job is still its own: its id and meta.
    expect(second?.job.meta).toEqual({ app_id: 'A', day: '2026-11-30' });
    expect(second?.job.id).not.toBe(first?.job.id);
    const otherApp = (received.get('flyer.installs.acc_1/app_id=B') as Work[])[0];
    const otherAccount = (received.get('flyer.installs.acc_2/app_id=A') as Work[])[0];
    expect(otherApp?.checks.map((c) => c.key)).toEqual(['flyer/acc_1|1000', 'flyer/B|60000']);
    expect(otherAccount?.checks.map((c) => c.key)).toEqual(['flyer/acc_2|1000', 'flyer/A|60000']);
    expect(otherApp?.pauseKeys).toContain('flyer/installs/acc_1/app_id=B');
  });
});
