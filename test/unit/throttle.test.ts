import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  spawnActor,
  spawnSupervisor,
  startActorSystem,
  stateOf,
  stopActorSystem,
  tell,
  type ParentRef,
} from '../../src/actors/nact-typed.ts';
import type { NodeServices } from '../../src/actors/services.ts';
import { KeyThrottle, throttleKind } from '../../src/actors/throttle.ts';
import type { JobMessage } from '../../src/bus/job-message.ts';
import { CredentialStore } from '../../src/config/credentials.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import type { LimitCheck, Reservation } from '../../src/limits/ledger.ts';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';
import type { PoolMessage } from '../../src/messages/pool-messages.ts';
import type { RouterMessage } from '../../src/messages/router-messages.ts';
import type { Work } from '../../src/messages/work.ts';
import { NodeStats } from '../../src/runtime/node-stats.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';

/**
 * One real throttle actor (nact, the in-memory ledger, the scheduler) with a stand-in for the
 * collector pool that "sends" each call at once, counts the slot from then (markSent) and ends it.
 */

/** A JetStream message stand-in: only remembers whether it was settled and how. */
class HeldMessage implements JobMessage {
  readonly subject = 'prism.jobs.t.r.a';
  readonly data = new Uint8Array(0);
  readonly msgId = undefined;
  readonly deliveryCount = 1;
  readonly streamSeq = 0;
  settled = false;
  nakDelay: number | undefined;
  async ack(): Promise<void> {
    this.settled = true;
  }
  nak(delayMs: number): void {
    this.settled = true;
    this.nakDelay = delayMs;
  }
  working(): void {}
}

const KEY = 't.r.a';
const checks: LimitCheck[] = [{ key: 't/a|100', limit: 1, windowMs: 100, kind: 'rolling', weight: 1 }];

const newWork = (): Work => ({
  job: {
    id: `job-${Math.random()}`,
    source: 't',
    api: 'r',
    account: 'a',
    request: { method: 'GET', url: 'https://t.example/r', query: {}, headers: {}, body: null },
    meta: {},
  },
  key: KEY,
  message: new HeldMessage(),
  checks,
  pauseKeys: ['t/r/a', 't/a', 't'],
  attempt: 1,
  page: 0,
  request: { url: 'https://t.example/r', query: {} },
  objects: [],
  startedAt: Date.now(),
  throttled: 0,
});

let system: ParentRef | undefined;
let scheduler: Scheduler | undefined;
afterEach(() => {
  scheduler?.stop();
  if (system !== undefined) stopActorSystem(system);
  system = undefined;
});

function setUp(marginMs = 5) {
  const config = ConfigSchema.parse({
    node: { ledger: 'memory', limitMargin: marginMs, passivateAfter: '1h', maxParkedPerKey: 50 },
    sources: { t: { allowHosts: ['t.example'], apis: { r: {} } } },
  });
  const ledger = new MemoryLedger({ marginMs });
  let asked = 0;
  const reserve = ledger.reserve.bind(ledger);
  ledger.reserve = (c: readonly LimitCheck[], now: number): Reservation => {
    asked++;
    return reserve(c, now);
  };
  const unused = <T extends object>(name: string): T =>
    new Proxy({} as T, {
      get: (_target, property) => {
        throw new Error(`the throttle does not use ${name}.${String(property)}`);
      },
    });
  scheduler = new Scheduler(() => performance.timeOrigin + performance.now());
  const stats = new NodeStats();
  const services: NodeServices = {
    config,
    nodeName: 'test',
    log: pino({ level: 'silent' }),
    ledger,
    scheduler,
    http: unused('http'),
    storage: unused('storage'),
    publisher: unused('publisher'),
    attempts: unused('attempts'),
    checkpoints: unused('checkpoints'),
    credentials: new CredentialStore(config, {}),
    stats,
    now: () => performance.timeOrigin + performance.now(),
  };
  const quiet = {
    restart: 'resume',
    backoffBaseMs: 1,
    backoffMaxMs: 1,
    maxCrashes: 10,
    windowMs: 1_000,
    onCrash: () => {},
  } as const;
  system = startActorSystem(`throttle-test-${Math.random().toString(36).slice(2)}`);
  const sent: number[] = [];
  const pool = spawnActor<undefined, PoolMessage>(system, {
    name: 'pool',
    initialState: () => undefined,
    receive: (state, message) => {
      if (message.type !== 'call') return state;
      const at = services.now();
      sent.push(at);
      void ledger.markSent(message.work.reservation as number, message.work.reservedChecks ?? checks, at);
      void message.work.message.ack();
      tell(message.replyTo, { type: 'call-ended' });
      return state;
    },
    supervision: quiet,
  });
  const router = spawnActor<undefined, RouterMessage>(system, {
    name: 'router',
    initialState: () => undefined,
    receive: (state) => state,
    supervision: quiet,
  });
  const spawn = throttleKind({ services, pool, router, onStopped: () => {} });
  const ref = spawn(
    spawnSupervisor(system, 'throttles', () => {}),
    'throttle-1',
    KEY,
    1,
  );
  const status = stateOf<KeyThrottle>(ref) as KeyThrottle;
  return { ref, status, sent, ledger, services, asked: () => asked };
}

const until = async (check: () => boolean, ms = 3_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe("a key's line of parked jobs", () => {
  it('keeps arrival order, puts a returning job first, and unlinks every job it lets go', () => {
    const line = new KeyThrottle(KEY, 1, 0);
    const [a, b, c, d] = [newWork(), newWork(), newWork(), newWork()] as [Work, Work, Work, Work];
    line.park(a, false);
    line.park(b, false);
    // A next page or a retry goes back to the front.
    line.park(c, true);
    expect(line.parked).toBe(3);
    expect(line.unparkFirst()).toBe(c);
    expect(c.nextInLine).toBeUndefined();
    line.park(d, false);
    expect(line.takeParked()).toEqual([a, b, d]);
    expect([a, b, d].map((w) => w.nextInLine)).toEqual([undefined, undefined, undefined]);
    expect(line.parked).toBe(0);
    expect(line.firstInLine).toBeUndefined();
    // An emptied line takes jobs again, first or last.
    line.park(b, true);
    line.park(a, false);
    expect(line.takeParked()).toEqual([b, a]);
  });
});

describe('throttle actor', () => {
  it('spaces calls by the limit + margin, says why it waits, and asks the ledger about twice a call', async () => {
    const { ref, status, sent, asked } = setUp();
    for (let i = 0; i < 4; i++) tell(ref, { type: 'enqueue', work: newWork() });
    await until(() => sent.length === 1);
    await until(() => status.waitUntil !== undefined);
    expect(status.parked).toBe(3);
    expect(status.waitReason).toBe('limit 1/100ms on t/a|100');
    // Jobs that arrive while the key waits do not ask the ledger (it named the time already).
    const askedBefore = asked();
    for (let i = 0; i < 20; i++) tell(ref, { type: 'enqueue', work: newWork() });
    await until(() => status.parked === 23);
    expect(asked()).toBe(askedBefore);
    await until(() => sent.length === 8, 5_000);
    for (let i = 1; i < sent.length; i++)
      expect((sent[i] as number) - (sent[i - 1] as number)).toBeGreaterThanOrEqual(105);
    // One grant per call and one refusal after it, at most (no wake-up refused for being early).
    expect(asked()).toBeLessThanOrEqual(2 * sent.length + 1);
  });

  it('waits out a pause of its scope, naming it, then calls again', async () => {
    const { ref, status, sent, ledger, services } = setUp();
    const until300 = services.now() + 300;
    await ledger.pause('t/a', until300, 'platform said code 17');
    tell(ref, { type: 'enqueue', work: newWork() });
    await until(() => status.pausedUntil !== undefined);
    expect(status.pauseReason).toBe('platform said code 17');
    expect(status.waitReason).toBe('paused: platform said code 17');
    expect(sent).toHaveLength(0);
    await until(() => sent.length === 1);
    expect(sent[0]).toBeGreaterThanOrEqual(until300);
    expect(status.pausedUntil).toBeUndefined();
  });

  it('works out the pause scopes of a job as the router makes it only once a pause is known', async () => {
    const { ref, status, sent, ledger, services } = setUp();
    // The router no longer resolves pause scopes: with no pause or slowdown, nothing does.
    const quiet = { ...newWork(), pauseKeys: undefined };
    tell(ref, { type: 'enqueue', work: quiet });
    await until(() => sent.length === 1);
    expect(quiet.pauseKeys).toBeUndefined();
    // A pause of the account's scope: the next job's scopes are resolved from its fields, and it waits.
    await ledger.pause('t/a', services.now() + 10_000, 'platform said code 17');
    const held = { ...newWork(), pauseKeys: undefined };
    tell(ref, { type: 'enqueue', work: held });
    await until(() => status.pausedUntil !== undefined);
    expect(held.pauseKeys).toEqual(['t/r/a', 't/a', 't']);
    expect(status.waitReason).toBe('paused: platform said code 17');
    expect(sent).toHaveLength(1);
  });

  it("a key's jobs share one set of equal check objects, so the ledger finds its window through them", async () => {
    const { ref, sent, status, ledger } = setUp();
    // As the router makes them: equal checks, new objects for every job.
    const works = [0, 1, 2].map(() => ({
      ...newWork(),
      checks: checks.map((check) => ({ ...check, ledgerMemo: undefined })),
    }));
    for (const work of works) tell(ref, { type: 'enqueue', work });
    await until(() => sent.length === 1 && status.parked === 2);
    expect(works[1]!.checks).toBe(works[0]!.checks);
    expect(works[2]!.checks).toBe(works[0]!.checks);
    // The ledger remembered the key's window on the shared check: no map lookup on later calls.
    expect(works[0]!.checks[0]!.ledgerMemo).toBeDefined();
    expect(works[0]!.checks[0]!.ledgerMemo).toBe(works[2]!.checks[0]!.ledgerMemo);
    // A job with other limits keeps its own.
    const other = { ...newWork(), checks: [{ ...checks[0]!, limit: 2, ledgerMemo: undefined }] };
    tell(ref, { type: 'enqueue', work: other });
    await until(() => status.parked === 3);
    expect(other.checks).not.toBe(works[0]!.checks);
    expect(ledger.keyCount).toBe(1);
  });

  it('an idle key holds none of its jobs and no checks of its last job', async () => {
    const { ref, status, sent } = setUp();
    tell(ref, { type: 'enqueue', work: newWork() });
    tell(ref, { type: 'enqueue', work: newWork() });
    await until(() => sent.length === 2);
    await until(() => status.inFlight === 0 && status.parked === 0);
    expect(status.firstInLine).toBeUndefined();
    expect(status.notBeforeChecks).toBeUndefined();
    expect(status.keyChecks).toBeUndefined();
    expect(status.waitReason).toBeUndefined();
  });

  /** A job of one app, with a day quota of one call per app (or the key's 1 per 100 ms). */
  const appWork = (app: string, dayQuota = true): Work => ({
    ...newWork(),
    checks: dayQuota
      ? [{ key: `t/${app}|day`, limit: 1, windowMs: 86_400_000, kind: 'utc-day', weight: 1 }]
      : checks,
    pauseKeys: ['t/r/a', 't/a', 't', `t/${app}`],
  });
  const nearMidnight = nextUtcMidnight(Date.now()) - Date.now() < 3 * 60_000;

  it.skipIf(nearMidnight)(
    "a day quota spent by one app sends that app's jobs back to JetStream; the key's other jobs go on",
    async () => {
      const { ref, status, sent } = setUp();
      const works = ['A', 'A', 'B', 'A', 'C'].map((app) => appWork(app));
      for (const work of works) tell(ref, { type: 'enqueue', work });
      await until(() => sent.length === 3);
      const held = works.map((w) => w.message as HeldMessage);
      // A's first, B's and C's left; A's other two wait for the next UTC day in JetStream.
      expect(held.map((m) => m.nakDelay === undefined)).toEqual([true, false, true, false, true]);
      expect(held[1]!.nakDelay).toBeGreaterThan(60_000);
      expect(status.parked).toBe(0);
    },
  );

  it("a long pause of one app's scope holds only that app's jobs", async () => {
    const { ref, sent, ledger, services } = setUp();
    await ledger.pause('t/A', services.now() + 10 * 60_000, 'app A: code 4');
    const works = ['A', 'B', 'A', 'B'].map((app) => appWork(app, false));
    for (const work of works) tell(ref, { type: 'enqueue', work });
    await until(() => sent.length === 2);
    const held = works.map((w) => w.message as HeldMessage);
    expect(held.map((m) => m.nakDelay === undefined)).toEqual([false, true, false, true]);
    expect(held[0]!.nakDelay).toBeGreaterThan(9 * 60_000);
  });

  it('holds at most maxParkedPerKey jobs; the rest go back to JetStream for later', async () => {
    const { ref, status } = setUp();
    const works = Array.from({ length: 60 }, newWork);
    for (const work of works) tell(ref, { type: 'enqueue', work });
    await until(() => works.filter((w) => w.message.settled).length >= 10);
    // The first left at once, 50 wait in the key, 9 went back with a delay of about their turn.
    const handedBack = works.map((w) => w.message as HeldMessage).filter((m) => m.nakDelay !== undefined);
    expect(handedBack).toHaveLength(9);
    expect(works.slice(0, 51).every((w) => (w.message as HeldMessage).nakDelay === undefined)).toBe(true);
    expect(handedBack.every((m) => (m.nakDelay as number) >= 1_000)).toBe(true);
    expect(status.parked).toBeLessThanOrEqual(50);
  });
});
