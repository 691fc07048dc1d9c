import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import { slowdownCheck, type LimitCheck } from '../../src/limits/ledger.ts';
import { nextUtcMidnight } from '../../src/limits/window-log.ts';

const check = (limit: number, windowMs: number, key = 'k', weight = 1): LimitCheck => ({
  key,
  limit,
  windowMs,
  kind: 'rolling',
  weight,
});

describe('MemoryLedger sliding windows', () => {
  it('allows N calls then says exactly when the next fits', () => {
    const ledger = new MemoryLedger();
    const c = [check(2, 1000)];
    expect(ledger.reserve(c, 0).granted).toBe(true);
    expect(ledger.reserve(c, 10).granted).toBe(true);
    const denied = ledger.reserve(c, 20);
    expect(denied).toMatchObject({ granted: false, retryAt: 1000, blockedBy: 'k' });
    expect(ledger.reserve(c, 999).granted).toBe(false);
    expect(ledger.reserve(c, 1000).granted).toBe(true);
  });

  it('honours every limit of a key and reports the strictest wait', () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 100, 'a'), check(3, 10_000, 'b')];
    for (const t of [0, 100, 200]) expect(ledger.reserve(c, t).granted).toBe(true);
    expect(ledger.reserve(c, 300)).toMatchObject({ granted: false, retryAt: 10_000, blockedBy: 'b' });
  });

  it('retakes a lapsed slot at the time the call really leaves, or refuses and frees it', async () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 1000, 'shared')];
    const late = ledger.reserve(c, 0);
    // The first call waits for a collector; its slot leaves the window and another call takes the room.
    const other = ledger.reserve(c, 1000);
    expect(other.granted).toBe(true);
    expect(late.granted && (await ledger.retake(late.id, c, 1500))).toMatchObject({
      granted: false,
      retryAt: 2000,
    });
    // Refused, its old slot is gone too: the room after `other` is free for one call.
    expect(ledger.reserve(c, 2000).granted).toBe(true);
    // Retaken where there is room: a new slot at the new time.
    const quiet = [check(1, 1000, 'quiet')];
    const first = ledger.reserve(quiet, 0);
    // Answered at once, as reserve is: a call that waited for the pool awaits no promise.
    const again = first.granted ? ledger.retake(first.id, quiet, 700) : first;
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ granted: true, at: 700 });
    expect(ledger.reserve(quiet, 1600)).toMatchObject({ granted: false, retryAt: 1700 });
  });

  it('sweeps keys no window needs any more, keeping those a longer limit still counts', () => {
    const ledger = new MemoryLedger();
    const day = 86_400_000;
    ledger.reserve([check(1, 1000, 'short')], 0);
    ledger.reserve([check(10, 3 * day, 'long')], 0);
    ledger.sweep(2 * day);
    expect(ledger.keyCount).toBe(2);
    ledger.sweep(3 * day + 1);
    expect(ledger.keyCount).toBe(0);
  });

  it('a check remembers its log for one ledger only, and never one the sweep dropped', async () => {
    const day = 86_400_000;
    const a = new MemoryLedger();
    const b = new MemoryLedger();
    // The same check objects for every call of a key, as a throttle actor hands them.
    const c = [check(1, 1000, 'k')];
    expect(a.reserve(c, 0).granted).toBe(true);
    // Another ledger (another node in the same process) keeps its own count for the same check.
    expect(b.reserve(c, 10).granted).toBe(true);
    expect(a.reserve(c, 500)).toMatchObject({ granted: false, retryAt: 1000 });
    expect(b.reserve(c, 500)).toMatchObject({ granted: false, retryAt: 1010 });
    // The sweep drops a key's log; a check that remembers it and a fresh one share the new log.
    const kept = [check(1, 1000, 'j')];
    expect(a.reserve(kept, 0).granted).toBe(true);
    a.sweep(2 * day);
    expect(a.keyCount).toBe(0);
    const fresh = [check(1, 1000, 'j')];
    const granted = a.reserve(fresh, 2 * day);
    expect(granted.granted).toBe(true);
    // markSent through the old check moves the call in the live log, not in the dropped one.
    if (granted.granted) await a.markSent(granted.id, kept, 2 * day + 300);
    expect(a.reserve(kept, 2 * day + 1)).toMatchObject({ granted: false, retryAt: 2 * day + 1300 });
    expect(a.reserve(fresh, 2 * day + 1100)).toMatchObject({ granted: false, retryAt: 2 * day + 1300 });
    expect(a.keyCount).toBe(1);
  });

  it('takes no slot in any limit when one limit refuses', () => {
    const ledger = new MemoryLedger();
    expect(ledger.reserve([check(1, 1000, 'shared')], 0).granted).toBe(true);
    expect(ledger.reserve([check(5, 1000, 'own'), check(1, 1000, 'shared')], 1).granted).toBe(false);
    // 'own' must still have all 5 slots.
    for (let i = 0; i < 5; i++) expect(ledger.reserve([check(5, 1000, 'own')], 2 + i).granted).toBe(true);
  });

  it('counts weights (a write costs 3)', () => {
    const ledger = new MemoryLedger();
    expect(ledger.reserve([check(4, 1000, 'w', 3)], 0).granted).toBe(true);
    expect(ledger.reserve([check(4, 1000, 'w', 3)], 1).granted).toBe(false);
    expect(ledger.reserve([check(4, 1000, 'w', 1)], 2).granted).toBe(true);
  });

  it('moves a slot to when the call really left', async () => {
    const ledger = new MemoryLedger();
    const c = [check(1, 1000)];
    const first = ledger.reserve(c, 0);
    if (!first.granted) throw new Error('expected a slot');
    // At once, with no promise: the next reservation already sees the slot where the call left.
    expect(ledger.markSent(first.id, c, 250)).toBeUndefined();
    expect(ledger.reserve(c, 1000)).toMatchObject({ granted: false, retryAt: 1250 });
    expect(ledger.reserve(c, 1250).granted).toBe(true);
  });

  it('gives back the slot, the day count and the place of a call that never left', async () => {
    const ledger = new MemoryLedger();
    const t = Date.UTC(2026, 10, 24, 12, 0, 0);
    const day: LimitCheck = { key: 'd', limit: 1, windowMs: 86_400_000, kind: 'utc-day', weight: 1 };
    const place: LimitCheck = { key: 'k|in-flight', limit: 1, windowMs: 0, kind: 'concurrent', weight: 1 };
    const c = [check(1, 5_000), day, place];
    const unsent = ledger.reserve(c, t);
    if (!unsent.granted) throw new Error('expected a slot');
    expect(ledger.reserve(c, t + 100).granted).toBe(false);
    // At once, with no promise, as the ledger's other answers in memory.
    expect(ledger.cancel(unsent.id, c)).toBeUndefined();
    const next = ledger.reserve(c, t + 100);
    expect(next.granted).toBe(true);
    // The new call counts in full: the window, the day and the place are held again.
    expect(ledger.reserve([check(1, 5_000)], t + 200)).toMatchObject({ granted: false, retryAt: t + 5_100 });
    expect(ledger.reserve([day], t + 200).granted).toBe(false);
    expect(ledger.reserve([place], t + 200).granted).toBe(false);
    // Cancelling an id the ledger does not hold changes nothing.
    ledger.cancel(unsent.id, c);
    expect(ledger.reserve([check(1, 5_000)], t + 300).granted).toBe(false);
  });

  it('widens windows by the margin', () => {
    const ledger = new MemoryLedger({ marginMs: 25 });
    const c = [check(1, 1000)];
    ledger.reserve(c, 0);
    expect(ledger.reserve(c, 1000)).toMatchObject({ granted: false, retryAt: 1025 });
  });

  it('resets calendar-day quotas at 00:00 UTC', () => {
    const ledger = new MemoryLedger();
    const day: LimitCheck = { key: 'd', limit: 2, windowMs: 86_400_000, kind: 'utc-day', weight: 1 };
    const t = Date.UTC(2026, 10, 24, 23, 0, 0);
    expect(ledger.reserve([day], t).granted).toBe(true);
    expect(ledger.reserve([day], t + 1).granted).toBe(true);
    expect(ledger.reserve([day], t + 2)).toMatchObject({ granted: false, retryAt: nextUtcMidnight(t) });
    expect(ledger.reserve([day], nextUtcMidnight(t)).granted).toBe(true);
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
            const r = ledger.reserve(c, now);
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

  it('never grants before the time a refusal named: a throttle may skip asking until then (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 300 }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 1 }),
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 1, max: 2 }),
          ),
          {
            minLength: 1,
            maxLength: 200,
          },
        ),
        (ownLimit, sharedLimit, windowMs, steps) => {
          // Two keys, each with its own limit and one they share; calls of weight 1 or 2.
          const checksOf = (key: number, weight: number): LimitCheck[] => [
            check(ownLimit + 1, windowMs, `own${key}`, weight),
            check(sharedLimit + 1, windowMs * 2, 'shared', weight),
          ];
          const asksAlways = new MemoryLedger({ marginMs: 5 });
          const skips = new MemoryLedger({ marginMs: 5 });
          const notBefore = [
            { at: 0, weight: 0 },
            { at: 0, weight: 0 },
          ];
          let now = 0;
          for (const [key, step, weight] of steps) {
            now += step;
            const checks = checksOf(key, weight);
            const answer = asksAlways.reserve(checks, now);
            const bound = notBefore[key]!;
            if (now < bound.at && bound.weight === weight) {
              // The skipping throttle does not ask: the ledger must have refused anyway.
              expect(answer.granted).toBe(false);
              continue;
            }
            const skipped = skips.reserve(checks, now);
            expect(skipped.granted).toBe(answer.granted);
            if (!skipped.granted) notBefore[key] = { at: skipped.retryAt, weight };
            else if (answer.granted && step % 3 === 0) {
              // The call left later than it was counted (collectors report it with markSent).
              void skips.markSent(skipped.id, checks, now + step / 3);
              void asksAlways.markSent(answer.id, checks, now + step / 3);
            }
          }
        },
      ),
    );
  });

  it('counts the call that brought a slowdown as the first of the slower pace', async () => {
    const ledger = new MemoryLedger();
    await ledger.slow('kakao/a1', 60_000, 500, 'kakao-slow', 1_000);
    const slowed = [slowdownCheck('kakao/a1', 500)];
    expect(ledger.reserve(slowed, 1_200)).toMatchObject({ granted: false, retryAt: 1_500 });
    expect(ledger.reserve(slowed, 1_500).granted).toBe(true);
    expect(ledger.reserve(slowed, 1_700)).toMatchObject({ granted: false, retryAt: 2_000 });
  });

  it('knows whether any pause or slowdown is in force, and forgets expired ones in its sweep', async () => {
    const ledger = new MemoryLedger();
    expect(ledger.hasSignals).toBe(false);
    await ledger.pause('meta/act_1', 1_000, 'code 17');
    await ledger.slow('meta', 2_000, 500, 'usage 80%', 0);
    expect(ledger.hasSignals).toBe(true);
    expect(ledger.pausedUntil('meta/act_1', 999)).toMatchObject({ until: 1_000 });
    ledger.sweep(1_500);
    expect(ledger.hasSignals).toBe(true);
    expect(ledger.slowedBy('meta', 1_500)).toMatchObject({ intervalMs: 500 });
    ledger.sweep(2_000);
    expect(ledger.hasSignals).toBe(false);
  });
});
