import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../src/bus/nats-connection.ts';
import { KvLedger, kvKey } from '../../src/limits/kv-ledger.ts';
import { SEND_ALLOWANCE_MS, type LimitCheck } from '../../src/limits/ledger.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';

const rolling = (key: string, limit: number, windowMs: number, weight = 1): LimitCheck => ({
  key,
  limit,
  windowMs,
  kind: 'rolling',
  weight,
});

describe('KvLedger: one ledger for many nodes, in JetStream KV', () => {
  let nats: NatsServerHandle;
  const connections: NatsConnection[] = [];
  const ledgers: KvLedger[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    // Three "nodes": three connections, three ledgers with their own caches.
    for (let i = 0; i < 3; i++) {
      const nc = await connectNats({ url: nats.url, name: `ledger-${i}` });
      connections.push(nc);
      ledgers.push(await KvLedger.open(nc, { marginMs: 0, leaseMs: 5_000, concurrencyPollMs: 20 }));
    }
  });
  afterAll(async () => {
    for (const ledger of ledgers) await ledger.close();
    for (const nc of connections) await nc.close();
    await nats?.stop();
  });

  it('grants at most N calls per window across nodes racing for the same key', async () => {
    const check = [rolling('race/acct', 5, 1_000)];
    const granted: number[] = [];
    const start = Date.now();
    // Each node tries as fast as it can for 2.5 s.
    await Promise.all(
      ledgers.map(async (ledger) => {
        while (Date.now() - start < 2_500) {
          const now = Date.now();
          const r = await ledger.reserve(check, now);
          // The slot counts from when the ledger recorded it (its successful attempt).
          if (r.granted) granted.push(r.at);
          else await new Promise((res) => setTimeout(res, Math.max(0, Math.min(50, r.retryAt - Date.now()))));
        }
      }),
    );
    granted.sort((a, b) => a - b);
    for (let i = 0; i < granted.length; i++) {
      const inWindow = granted.filter(
        (t) => t > (granted[i] as number) - 1_000 && t <= (granted[i] as number),
      ).length;
      expect(inWindow).toBeLessThanOrEqual(5);
    }
    // The limit was used, not just refused: about 5 per second over 2.5 s.
    expect(granted.length).toBeGreaterThanOrEqual(10);
    expect(granted.length).toBeLessThanOrEqual(15);
  });

  it('takes no slot anywhere when one of several limits refuses (all or nothing)', async () => {
    const a = ledgers[0] as KvLedger;
    const b = ledgers[1] as KvLedger;
    const now = Date.now();
    expect((await a.reserve([rolling('shared/app', 1, 60_000)], now)).granted).toBe(true);
    const refused = await b.reserve(
      [rolling('own/acct', 2, 60_000), rolling('shared/app', 1, 60_000)],
      now + 1,
    );
    expect(refused).toMatchObject({ granted: false, blockedBy: 'shared/app' });
    expect((await a.reserve([rolling('own/acct', 2, 60_000)], now + 2)).granted).toBe(true);
    expect((await b.reserve([rolling('own/acct', 2, 60_000)], now + 3)).granted).toBe(true);
    expect((await a.reserve([rolling('own/acct', 2, 60_000)], now + 4)).granted).toBe(false);
  });

  it('counts daily quotas per UTC day and moves slots to when calls left', async () => {
    const day: LimitCheck = {
      key: 'daily/acct',
      limit: 2,
      windowMs: 86_400_000,
      kind: 'utc-day',
      weight: 1,
    };
    const now = Date.now();
    expect((await ledgers[0]!.reserve([day], now)).granted).toBe(true);
    expect((await ledgers[1]!.reserve([day], now)).granted).toBe(true);
    expect(await ledgers[2]!.reserve([day], now)).toMatchObject({ granted: false });

    const check = [rolling('sent/acct', 1, 1_000)];
    const slot = await ledgers[0]!.reserve(check, now);
    if (!slot.granted) throw new Error('expected a slot');
    await ledgers[0]!.markSent(slot.id, check, now + 300);
    expect(await ledgers[1]!.reserve(check, now + 1_100)).toMatchObject({
      granted: false,
      retryAt: now + 1_300,
    });
  });

  it('a retake just after midnight takes its call off the day it was counted in, not the new one', async () => {
    const day: LimitCheck = {
      key: 'daily/midnight',
      limit: 2,
      windowMs: 86_400_000,
      kind: 'utc-day',
      weight: 1,
    };
    // The ledger decides at the time it is given: any midnight will do.
    const midnight = nextUtcMidnight(Date.now());
    const late = await ledgers[0]!.reserve([day], midnight - 500);
    if (!late.granted) throw new Error('expected a slot before midnight');
    // After midnight another node's call opens the new day's count.
    expect((await ledgers[1]!.reserve([day], midnight + 100)).granted).toBe(true);
    // The call from before midnight has not left yet: it takes its slot again, in the new day.
    expect((await ledgers[0]!.retake(late.id, [day], midnight + 200)).granted).toBe(true);
    // Two calls leave in the new day: its quota of 2 is spent.
    expect(await ledgers[2]!.reserve([day], midnight + 300)).toMatchObject({ granted: false });
  });

  it('retakes a lapsed slot across nodes: refused while another node holds the room', async () => {
    const [a, b] = ledgers as [KvLedger, KvLedger];
    const check = [rolling('lapse/app', 1, 1_000)];
    // a's call may leave until 11,000 (SEND_ALLOWANCE_MS): counted there until a says otherwise.
    const late = await a.reserve(check, 10_000);
    expect(await b.reserve(check, 11_050)).toMatchObject({ granted: false });
    const other = await b.reserve(check, 12_050);
    if (!other.granted) throw new Error('expected a slot for b');
    await b.markSent(other.id, check, other.at);
    // a's call is still waiting for a collector: its slot lapsed, and b's call holds the room.
    // (A ledger records a slot at the time of its successful attempt, a few ms after `now`.)
    const refused = late.granted ? await a.retake(late.id, check, 12_500) : late;
    expect(refused).toMatchObject({ granted: false, retryAt: other.at + 1_000 });
    const again = await a.reserve(check, 13_100);
    expect(again.granted).toBe(true);
    // Where there is room the slot moves to the new time, and another node sees it there: still
    // unconfirmed, so until it could leave (14,600) at the latest, and looked at again meanwhile.
    const moved = again.granted ? await a.retake(again.id, check, 13_600) : again;
    if (!moved.granted) throw new Error('expected the slot to move');
    expect(await b.reserve(check, 14_100)).toMatchObject({
      granted: false,
      retryAt: moved.at + 1_000,
    });
    await a.markSent(moved.id, check, 13_650);
    expect(await b.reserve(check, 14_200)).toMatchObject({
      granted: false,
      retryAt: expect.closeTo(14_650, -1),
    });
  });

  it('counts a call from the latest time it may leave until its node says when it left', async () => {
    const [a, b, c] = ledgers as [KvLedger, KvLedger, KvLedger];
    const allowance = a.sendAllowanceMs;
    expect(allowance).toBe(SEND_ALLOWANCE_MS);
    const check = [rolling('leave/acct', 1, 5_000)];
    const t0 = 1_000_000;
    const first = await a.reserve(check, t0);
    if (!first.granted) throw new Error('expected a slot');
    // Unconfirmed: the call may still leave until t0 + allowance, so another node's call waits for
    // a whole window after that; it may look again from when the call would free had it left at once.
    // (These ledgers look again every 20 ms: concurrencyPollMs.)
    const early = await b.reserve(check, t0 + 5_050);
    expect(early).toMatchObject({ granted: false, blockedBy: 'leave/acct' });
    // A poll after the time it decided at: that is `asked` plus the KV read it made first, a few
    // ms on a busy machine; far from the whole allowance.
    const retryAt = early.granted ? 0 : early.retryAt;
    expect(retryAt).toBeGreaterThanOrEqual(t0 + 5_070);
    expect(retryAt).toBeLessThan(t0 + 5_070 + 250);
    // Never later than when it frees for sure.
    expect(await b.reserve(check, t0 + 5_990)).toMatchObject({
      granted: false,
      retryAt: first.at + allowance + 5_000,
    });
    // The call left 200 ms after its grant. b's cache still holds the unconfirmed time: it reads
    // KV again before refusing, and goes as soon as the window after the real send allows.
    await a.markSent(first.id, check, t0 + 200);
    expect(await b.reserve(check, t0 + 5_100)).toMatchObject({
      granted: false,
      retryAt: expect.closeTo(t0 + 5_200, -1),
    });
    const second = await b.reserve(check, t0 + 5_210);
    expect(second.granted).toBe(true);
    // b's node dies before it says when its call left: the call stays counted at the latest time
    // it could have left, and c waits for that.
    expect(await c.reserve(check, t0 + 10_300)).toMatchObject({ granted: false });
    expect(await c.reserve(check, t0 + 5_210 + allowance + 5_010)).toMatchObject({ granted: true });
  });

  it('frees the slot of a call that never left at once, on every node, and takes it off the day', async () => {
    const [a, b] = ledgers as [KvLedger, KvLedger];
    const t0 = Date.UTC(2026, 10, 24, 12, 0, 0);
    const window = [rolling('unsent/acct', 1, 5_000)];
    const day: LimitCheck = { key: 'unsent/day', limit: 1, windowMs: 86_400_000, kind: 'utc-day', weight: 1 };
    const unsent = await a.reserve([...window, day], t0);
    if (!unsent.granted) throw new Error('expected a slot');
    // Unconfirmed and uncancelled, it holds b back for a window after its latest time.
    expect(await b.reserve(window, t0 + 100)).toMatchObject({ granted: false });
    expect(await b.reserve([day], t0 + 100)).toMatchObject({ granted: false });
    // a's HTTP client stopped the call before it was written: a gives the slot back.
    await a.cancel(unsent.id, [...window, day]);
    // b's cache still holds the unconfirmed call: it reads KV again before refusing, and goes.
    const next = await b.reserve(window, t0 + 200);
    expect(next.granted).toBe(true);
    expect((await b.reserve([day], t0 + 200)).granted).toBe(true);
    // b's call counts in full on a's side.
    expect(await a.reserve(window, t0 + 300)).toMatchObject({ granted: false });
  });

  it('costs two KV writes per call under one window, and no read once the key is cached', async () => {
    const a = ledgers[0] as KvLedger;
    const check = [rolling('traffic/acct', 1, 100)];
    const before = a.traffic();
    const t0 = 2_000_000;
    const calls = 5;
    for (let n = 0; n < calls; n++) {
      const at = t0 + n * 2_000;
      const slot = await a.reserve(check, at);
      if (!slot.granted) throw new Error(`expected a slot at call ${n}`);
      await a.markSent(slot.id, check, at + 3);
    }
    // One read the first time the key is seen; then the reservation's write and the write that
    // confirms when the call left, per call. No other node touches this key: no conflicts.
    expect(a.traffic().reads - before.reads).toBe(1);
    expect(a.traffic().writes - before.writes).toBe(2 * calls);
    // A key without limits never reaches KV.
    await a.reserve([], t0);
    expect(a.traffic().writes - before.writes).toBe(2 * calls);
  });

  it('holds a concurrency cap across nodes: never more than N in flight, and a freed place is seen at once', async () => {
    const cap: LimitCheck[] = [
      { key: 'cap/acct|in-flight', kind: 'concurrent', limit: 2, windowMs: 0, weight: 1 },
    ];
    // [from, to] of each call, on the node's clock: from after the grant, to before the release.
    const held: Array<[number, number]> = [];
    const byNode = [0, 0, 0];
    const start = Date.now();
    await Promise.all(
      ledgers.map(async (ledger, node) => {
        while (Date.now() - start < 2_000) {
          const r = await ledger.reserve(cap, Date.now());
          if (!r.granted) {
            await new Promise((res) => setTimeout(res, Math.max(0, r.retryAt - Date.now())));
            continue;
          }
          const from = Date.now();
          await new Promise((res) => setTimeout(res, 30));
          held.push([from, Date.now()]);
          byNode[node]!++;
          await ledger.release(r.id, cap);
        }
      }),
    );
    const most = Math.max(...held.map(([from]) => held.filter(([f, t]) => f <= from && from < t).length));
    expect(most).toBe(2);
    // The cap was used, not just refused: two at a time, ~30 ms each (plus KV round trips), for 2 s.
    // A node that waited for leases to lapse (5 s) instead of seeing releases would make ~2.
    expect(held.length).toBeGreaterThanOrEqual(40);
    // And every node had its turns: none kept refusing on a stale view of the cap.
    expect(Math.min(...byNode)).toBeGreaterThanOrEqual(5);
  });

  it("lets a dead node's place under a cap lapse after its lease", async () => {
    const nc = await connectNats({ url: nats.url, name: 'ledger-dies' });
    const dies = await KvLedger.open(nc, { marginMs: 0, leaseMs: 400 });
    const cap: LimitCheck[] = [
      { key: 'lapse/acct|in-flight', kind: 'concurrent', limit: 1, windowMs: 0, weight: 1 },
    ];
    const taken = Date.now();
    expect((await dies.reserve(cap, taken)).granted).toBe(true);
    await dies.close();
    await nc.close();
    const other = ledgers[1] as KvLedger;
    expect((await other.reserve(cap, Date.now())).granted).toBe(false);
    let granted = false;
    while (!granted && Date.now() - taken < 3_000) {
      granted = (await other.reserve(cap, Date.now())).granted;
      if (!granted) await new Promise((res) => setTimeout(res, 20));
    }
    expect(granted).toBe(true);
    expect(Date.now() - taken).toBeGreaterThanOrEqual(400);
  });

  it('spreads a pause to every node', async () => {
    await ledgers[0]!.pause('meta/act_1', Date.now() + 5_000, 'meta-account-limit');
    await expect
      .poll(async () => (await ledgers[2]!.pausedUntil('meta/act_1', Date.now()))?.reason, { timeout: 2_000 })
      .toBe('meta-account-limit');
  });

  it('encodes any limit key as a valid KV key', () => {
    expect(kvKey('meta/act_1|5000')).toBe('meta/act_5F1_7C5000');
    expect(kvKey('af/com.app|day')).toBe('af/com.app_7Cday');
    expect(kvKey('x/..|1')).toMatch(/^[-/_=.a-zA-Z0-9]+$/);
    expect(kvKey('x/..|1')).not.toContain('..');
  });
});
