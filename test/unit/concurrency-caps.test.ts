import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.ts';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import type { LimitCheck } from '../../src/limits/ledger.ts';
import { limitChecksFor } from '../../src/limits/limit-keys.ts';
import {
  liveWaiters,
  placeFit,
  withoutWaiter,
  withWaiter,
  type Leases,
  type Waiters,
} from '../../src/limits/leases.ts';

const cap = (limit: number, key = 'k|in-flight'): LimitCheck => ({
  key,
  kind: 'concurrent',
  limit,
  windowMs: 0,
  weight: 1,
});
const window = (limit: number, windowMs: number, key = 'w'): LimitCheck => ({
  key,
  kind: 'rolling',
  limit,
  windowMs,
  weight: 1,
});

describe('concurrency caps in the ledger', () => {
  it('grants N places, refuses the next with a time to look again, and frees a place on release', async () => {
    const ledger = new MemoryLedger({ leaseMs: 10_000, concurrencyPollMs: 40 });
    const c = [cap(2)];
    const a = ledger.reserve(c, 0);
    const b = ledger.reserve(c, 1);
    expect([a.granted, b.granted]).toEqual([true, true]);
    expect(ledger.reserve(c, 2)).toMatchObject({
      granted: false,
      retryAt: 42,
      reason: 'at most 2 in flight on k|in-flight',
      limit: { kind: 'concurrent' },
    });
    if (!a.granted) throw new Error('expected a place');
    await ledger.release(a.id, c);
    expect(ledger.reserve(c, 3).granted).toBe(true);
    expect(ledger.reserve(c, 4).granted).toBe(false);
    // Releasing twice, or an id that holds nothing, frees nothing more.
    await ledger.release(a.id, c);
    await ledger.release(999, c);
    expect(ledger.reserve(c, 5).granted).toBe(false);
  });

  it('lets the place of a call that was never released lapse after the lease', () => {
    const ledger = new MemoryLedger({ leaseMs: 1_000, concurrencyPollMs: 5_000 });
    const c = [cap(1)];
    expect(ledger.reserve(c, 0).granted).toBe(true);
    // The poll is longer than the lease here: the answer is the lapse itself.
    expect(ledger.reserve(c, 10)).toMatchObject({ granted: false, retryAt: 1_000 });
    expect(ledger.reserve(c, 999).granted).toBe(false);
    expect(ledger.reserve(c, 1_000).granted).toBe(true);
  });

  it('takes a place only when every other limit has room too (all or nothing)', async () => {
    const ledger = new MemoryLedger({ leaseMs: 10_000 });
    const both = [window(1, 1_000), cap(1)];
    expect(ledger.reserve(both, 0).granted).toBe(true);
    // The window refuses: the cap must not have kept a place for the refused call.
    const refused = ledger.reserve([window(1, 1_000)], 10);
    expect(refused.granted).toBe(false);
    const first = ledger.reserve([cap(1, 'other|in-flight')], 10);
    expect(first.granted).toBe(true);
    const blocked = ledger.reserve([window(5, 1_000, 'w2'), cap(1, 'other|in-flight')], 20);
    expect(blocked).toMatchObject({ granted: false, limit: { key: 'other|in-flight' } });
    // The window w2 kept nothing for it either: five calls still fit.
    for (let t = 30; t < 35; t++) expect(ledger.reserve([window(5, 1_000, 'w2')], t).granted).toBe(true);
  });

  it('gives the place back when a call retakes its slot and is refused', async () => {
    const ledger = new MemoryLedger({ leaseMs: 10_000 });
    const checks = [window(1, 1_000), cap(1)];
    const late = ledger.reserve(checks, 0);
    expect(late.granted).toBe(true);
    if (!late.granted) throw new Error('expected a slot');
    // The window has no room at 500 for a new slot: refused, and its place is free again.
    const again = await ledger.retake(late.id, checks, 500);
    expect(again.granted).toBe(true);
    if (!again.granted) throw new Error('expected a slot');
    expect(ledger.reserve([cap(1)], 600).granted).toBe(false);
    await ledger.release(again.id, checks);
    expect(ledger.reserve([cap(1)], 700).granted).toBe(true);
  });

  it('never has more than N places held, whatever the order of reserves, releases and lapses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { maxLength: 60 }),
        (limit, steps) => {
          const leaseMs = 500;
          const ledger = new MemoryLedger({ leaseMs, concurrencyPollMs: 10 });
          const c = [cap(limit)];
          const held = new Map<number, number>();
          let now = 0;
          for (const [reserve, dt] of steps) {
            now += dt;
            for (const [id, at] of held) if (at + leaseMs <= now) held.delete(id);
            if (reserve) {
              const r = ledger.reserve(c, now);
              if (r.granted) held.set(r.id, now);
              else expect(held.size).toBe(limit);
              // Refused only when full; granted only when there was room.
              expect(held.size).toBeLessThanOrEqual(limit);
            } else {
              const oldest = [...held.keys()][0];
              if (oldest !== undefined) {
                void ledger.release(oldest, c);
                held.delete(oldest);
              }
            }
          }
        },
      ),
    );
  });
});

describe('the line of nodes waiting for a place under a cap', () => {
  const leases = (n: number): Leases => ({ ids: [...Array(n).keys()], until: Array(n).fill(10_000) });
  const line = (...ids: string[]): Waiters => ({ ids, until: ids.map(() => 500) });

  it('lets a node take a place only when the nodes ahead of it in line cannot fill the free ones', () => {
    // Two places, one held, one free: the first in line (or anyone, with nobody in line) takes it.
    expect(placeFit(leases(1), line(), 2, 'a', 100, 20)).toBe(100);
    expect(placeFit(leases(1), line('a', 'b'), 2, 'a', 100, 20)).toBe(100);
    // Someone else is first: look again after the poll, although a place is free.
    expect(placeFit(leases(1), line('a', 'b'), 2, 'b', 100, 20)).toBe(120);
    expect(placeFit(leases(1), line('a'), 2, 'c', 100, 20)).toBe(120);
    // Two free places: the first two in line may take them, a newcomer waits.
    expect(placeFit(leases(0), line('a', 'b'), 2, 'b', 100, 20)).toBe(100);
    expect(placeFit(leases(0), line('a', 'b'), 2, 'c', 100, 20)).toBe(120);
    // No free place: as for leaseFit, the next lapse or the poll.
    expect(placeFit(leases(2), line('a'), 2, 'a', 100, 20)).toBe(120);
  });

  it('keeps its order: a newcomer joins at the back, a waiter renews where it stands, lapsed ones drop out', () => {
    const waiting = withWaiter(withWaiter(line(), 'a', 300), 'b', 300);
    expect(withWaiter(waiting, 'a', 900)).toEqual({ ids: ['a', 'b'], until: [900, 300] });
    expect(withoutWaiter(waiting, 'a')).toEqual({ ids: ['b'], until: [300] });
    expect(withoutWaiter(waiting, 'z')).toBe(waiting);
    expect(liveWaiters({ ids: ['a', 'b', 'c'], until: [200, 100, 300] }, 150)).toEqual({
      ids: ['a', 'c'],
      until: [200, 300],
    });
  });
});

describe('concurrency caps in the config', () => {
  const source = (limits: unknown[]) => ({
    sources: { af: { allowHosts: ['x.example'], limits, apis: { r: { weight: 3 } } } },
  });

  it('reads { key, concurrent } as a cap of calls in flight, one place per call whatever its weight', () => {
    const config = parseConfig(
      source([
        { key: '{source}/{account}', concurrent: 2 },
        { key: '{source}/{account}', limit: 6, per: '1s' },
      ]),
    );
    const af = config.sources.af!;
    const vars = { source: 'af', api: 'r', account: 'a1', node: 'n1', meta: {} };
    expect(limitChecksFor(af, af.apis.r!, vars)).toEqual({
      ok: true,
      checks: [
        { key: 'af/a1|in-flight', kind: 'concurrent', limit: 2, windowMs: 0, weight: 1 },
        { key: 'af/a1|1000', kind: 'rolling', limit: 6, windowMs: 1000, weight: 3 },
      ],
    });
  });

  it('refuses a limit that is both shapes, neither, or a cap that is not a positive integer', () => {
    const problem = (limit: unknown): string => {
      try {
        parseConfig(source([limit]));
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(problem({ key: '{source}', concurrent: 2, limit: 1, per: '1s' })).toMatch(
      /either a window \(limit \+ per\) or a concurrency cap[\s\S]*at sources\.af\.limits\[0\]/,
    );
    expect(problem({ key: '{source}', concurrent: 2, reset: 'utc-day' })).toMatch(/not both/);
    expect(problem({ key: '{source}', limit: 1 })).toMatch(/needs limit and per/);
    expect(problem({ key: '{source}' })).toMatch(/needs limit and per[\s\S]*or concurrent/);
    expect(problem({ key: '{source}', concurrent: 0 })).toMatch(/concurrent/);
    expect(problem({ key: '{source}', concurrent: 1.5 })).toMatch(/concurrent/);
    expect(problem({ key: '{source}', concurrent: 2 })).toBe('accepted');
  });
});
