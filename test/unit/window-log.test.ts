import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import type { LimitCheck } from '../../src/limits/ledger.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';

const check = (limit: number, windowMs: number, key = 'k', weight = 1): LimitCheck => ({
  key,
  limit,
  windowMs,
  reset: 'rolling',
  weight,
});

describe('MemoryLedger sliding windows', () => {
  it('allows N calls then says exactly when the next fits', () => {
    const ledger = new MemoryLedger();
    const c = [check(2, 1000)];
    expect(ledger.reserveSync(c, 0).granted).toBe(true);
    expect(ledger.reserveSync(c, 10).granted).toBe(true);
    const denied = ledger.reserveSync(c, 20);
    expect(denied).toMatchObject({ granted: false, retryAt: 1000, blockedBy: 'k' });
    expect(ledger.reserveSync(c, 999).granted).toBe(false);
    expect(ledger.reserveSync(c, 1000).granted).toBe(true);
  });

  it('honours every limit of a key and reports the strictest wait', () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 100, 'a'), check(3, 10_000, 'b')];
    for (const t of [0, 100, 200]) expect(ledger.reserveSync(c, t).granted).toBe(true);
    expect(ledger.reserveSync(c, 300)).toMatchObject({ granted: false, retryAt: 10_000, blockedBy: 'b' });
  });

  it('retakes a lapsed slot at the time the call really leaves, or refuses and frees it', async () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 1000, 'shared')];
    const late = ledger.reserveSync(c, 0);
    // The first call waits for a collector; its slot leaves the window and another call takes the room.
    const other = ledger.reserveSync(c, 1000);
    expect(other.granted).toBe(true);
    expect(late.granted && (await ledger.retake(late.id, c, 1500))).toMatchObject({
      granted: false,
      retryAt: 2000,
    });
    // Refused, its old slot is gone too: the room after `other` is free for one call.
    expect(ledger.reserveSync(c, 2000).granted).toBe(true);
    // Retaken where there is room: a new slot at the new time.
    const quiet = [check(1, 1000, 'quiet')];
    const first = ledger.reserveSync(quiet, 0);
    const again = first.granted ? await ledger.retake(first.id, quiet, 700) : first;
    expect(again).toMatchObject({ granted: true });
    expect(ledger.reserveSync(quiet, 1600)).toMatchObject({ granted: false, retryAt: 1700 });
  });

  it('sweeps keys no window needs any more, keeping those a longer limit still counts', () => {
    const ledger = new MemoryLedger();
    const day = 86_400_000;
    ledger.reserveSync([check(1, 1000, 'short')], 0);
    ledger.reserveSync([check(10, 3 * day, 'long')], 0);
    ledger.sweep(2 * day);
    expect(ledger.keyCount).toBe(2);
    ledger.sweep(3 * day + 1);
    expect(ledger.keyCount).toBe(0);
  });

  it('takes no slot in any limit when one limit refuses', () => {
    const ledger = new MemoryLedger();
    expect(ledger.reserveSync([check(1, 1000, 'shared')], 0).granted).toBe(true);
    expect(ledger.reserveSync([check(5, 1000, 'own'), check(1, 1000, 'shared')], 1).granted).toBe(false);
    // 'own' must still have all 5 slots.
    for (let i = 0; i < 5; i++) expect(ledger.reserveSync([check(5, 1000, 'own')], 2 + i).granted).toBe(true);
  });

  it('counts weights (a write costs 3)', () => {
    const ledger = new MemoryLedger();
    expect(ledger.reserveSync([check(4, 1000, 'w', 3)], 0).granted).toBe(true);
    expect(ledger.reserveSync([check(4, 1000, 'w', 3)], 1).granted).toBe(false);
    expect(ledger.reserveSync([check(4, 1000, 'w', 1)], 2).granted).toBe(true);
  });

  it('moves a slot to when the call really left', async () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 1000)];
    const first = ledger.reserveSync(c, 0);
    if (!first.granted) throw new Error('expected a slot');
    await ledger.markSent(first.id, c, 250);
    expect(ledger.reserveSync(c, 1000)).toMatchObject({ granted: false, retryAt: 1250 });
    expect(ledger.reserveSync(c, 1250).granted).toBe(true);
  });

  it('widens windows by the margin', () => {
    const ledger = new MemoryLedger(25);
    const c = [check(1, 1000)];
    ledger.reserveSync(c, 0);
    expect(ledger.reserveSync(c, 1000)).toMatchObject({ granted: false, retryAt: 1025 });
  });

  it('resets calendar-day quotas at 00:00 UTC', () => {
    const ledger = new MemoryLedger();
    const day: LimitCheck = { key: 'd', limit: 2, windowMs: 86_400_000, reset: 'utc-day', weight: 1 };
    const t = Date.UTC(2026, 10, 24, 23, 0, 0);
    expect(ledger.reserveSync([day], t).granted).toBe(true);
    expect(ledger.reserveSync([day], t + 1).granted).toBe(true);
    expect(ledger.reserveSync([day], t + 2)).toMatchObject({ granted: false, retryAt: nextUtcMidnight(t) });
    expect(ledger.reserveSync([day], nextUtcMidnight(t)).granted).toBe(true);
  });

  it('never lets more than N calls into any window (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 200 }),
        (limit, windowMs, steps) => {
          const ledger = new MemoryLedger();
          const c = [check(limit, windowMs)];
          const granted: number[] = [];
          let now = 0;
          for (const step of steps) {
            now += step;
            const r = ledger.reserveSync(c, now);
            if (r.granted) granted.push(now);
            else expect(r.retryAt).toBeGreaterThan(now);
          }
          // Any window (t - windowMs, t] holds at most `limit` granted calls.
          for (let i = 0; i < granted.length; i++) {
            const inWindow = granted.filter(
              (t) => t > (granted[i] as number) - windowMs && t <= (granted[i] as number),
            );
            expect(inWindow.length).toBeLessThanOrEqual(limit);
          }
        },
      ),
    );
  });
});
