import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArrivalWindow } from '../../src/emulator/arrival-window.ts';

/** The definition, without any cleverness: every arrival ever, counted in (t - perMs, t]. */
function naive(times: number[], limit: number, perMs: number): boolean[] {
  return times.map((t, i) => times.slice(0, i).filter((s) => s > t - perMs && s <= t).length >= limit);
}

describe('ArrivalWindow', () => {
  it('refuses the (limit+1)-th arrival inside the window and counts refused arrivals too', () => {
    const w = new ArrivalWindow(2, 1000);
    expect(w.arrive('k', 0).violated).toBe(false);
    expect(w.arrive('k', 10).violated).toBe(false);
    const third = w.arrive('k', 20);
    expect(third.violated).toBe(true);
    expect(third.count).toBe(2);
    // The refused call at 20 still counts: at 1000 the window (0, 1000] holds 10 and 20.
    expect(w.arrive('k', 1000).violated).toBe(true);
    // (20, 1020] holds only 1000 → allowed.
    expect(w.arrive('k', 1020).violated).toBe(false);
  });

  it('treats the window as half-open: an arrival exactly perMs ago no longer counts', () => {
    const w = new ArrivalWindow(1, 500);
    expect(w.arrive('k', 100).violated).toBe(false);
    expect(w.arrive('k', 599.999).violated).toBe(true);
    const w2 = new ArrivalWindow(1, 500);
    w2.arrive('k', 100);
    expect(w2.arrive('k', 600).violated).toBe(false);
  });

  it('keeps keys apart', () => {
    const w = new ArrivalWindow(1, 1000);
    expect(w.arrive('a', 0).violated).toBe(false);
    expect(w.arrive('b', 1).violated).toBe(false);
    expect(w.arrive('a', 2).violated).toBe(true);
    expect(w.keys).toBe(2);
  });

  it('reports when a slot frees, the reset time and the gap', () => {
    const w = new ArrivalWindow(2, 1000);
    const first = w.arrive('k', 100);
    expect(first).toMatchObject({ count: 1, nextFreeMs: 0, resetInMs: 1000, gapMs: Infinity });
    const second = w.arrive('k', 300);
    // Full now: the next call is allowed once the arrival at 100 leaves, at 1100.
    expect(second).toMatchObject({ count: 2, nextFreeMs: 800, resetInMs: 800, gapMs: 200 });
    const third = w.arrive('k', 400);
    expect(third.violated).toBe(true);
    // Kept arrivals are now 300 and 400: free at 1300.
    expect(third.nextFreeMs).toBe(900);
    expect(w.arrive('k', 1300).violated).toBe(false);
  });

  it('counts without recording', () => {
    const w = new ArrivalWindow(3, 100);
    w.arrive('k', 0);
    w.arrive('k', 50);
    expect(w.count('k', 60)).toBe(2);
    expect(w.count('k', 100)).toBe(1);
    expect(w.count('k', 150)).toBe(0);
    expect(w.count('other', 0)).toBe(0);
  });

  it('never lets time run backwards for a key', () => {
    const w = new ArrivalWindow(1, 100);
    w.arrive('k', 50);
    expect(w.arrive('k', 10)).toMatchObject({ violated: true, gapMs: 0 });
  });

  it('matches the definition for any arrival sequence (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(fc.integer({ min: 0, max: 120 }), { maxLength: 120 }),
        (limit, perMs, gaps) => {
          let t = 0;
          const times = gaps.map((g) => (t += g));
          const w = new ArrivalWindow(limit, perMs);
          const got = times.map((time) => w.arrive('k', time).violated);
          expect(got).toEqual(naive(times, limit, perMs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects nonsense limits', () => {
    expect(() => new ArrivalWindow(0, 10)).toThrow(RangeError);
    expect(() => new ArrivalWindow(1.5, 10)).toThrow(RangeError);
    expect(() => new ArrivalWindow(1, 0)).toThrow(RangeError);
    expect(() => new ArrivalWindow(1, Infinity)).toThrow(RangeError);
  });

  it('prunes keys whose arrivals have all expired once the map doubles', () => {
    const w = new ArrivalWindow(5, 10);
    for (let i = 0; i < 1024; i++) w.arrive(`old-${i}`, 0);
    expect(w.keys).toBe(1024);
    w.arrive('new', 1000);
    expect(w.keys).toBe(1);
    w.clear();
    expect(w.keys).toBe(0);
  });

  it('handles 100k keys at well over 5k arrivals/s', () => {
    const w = new ArrivalWindow(60, 3_600_000);
    const keys = Array.from({ length: 100_000 }, (_, i) => `account:meta/act_${i}`);
    const started = performance.now();
    let t = 0;
    for (let round = 0; round < 3; round++) {
      for (const key of keys) w.arrive(key, (t += 0.2));
    }
    const hot = new ArrivalWindow(1000, 1000);
    for (let i = 0; i < 100_000; i++) hot.arrive('hot', i * 0.2);
    const elapsed = performance.now() - started;
    expect(w.keys).toBe(100_000);
    // 400k arrivals; 5k/s would allow 80 s. Generous so a busy CI machine passes.
    expect(elapsed).toBeLessThan(5_000);
  });
});
