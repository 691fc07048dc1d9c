import { afterEach, describe, expect, it, vi } from 'vitest';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { backoffDelay } from '../../src/runtime/backoff.ts';

describe('Scheduler', () => {
  it('runs wake-ups in time order on one timer, each with its argument', async () => {
    const scheduler = new Scheduler();
    const order: number[] = [];
    const push = (n: number): void => void order.push(n);
    const now = Date.now();
    for (const [i, delay] of [
      [3, 30],
      [1, 10],
      [2, 20],
      [4, 40],
    ] as const)
      scheduler.at(now + delay, push, i);
    await new Promise((r) => setTimeout(r, 80));
    expect(order).toEqual([1, 2, 3, 4]);
    expect(scheduler.size).toBe(0);
    scheduler.stop();
  });

  it('keeps 20,000 wake-ups in order (same times first come, first served) and never runs one early', async () => {
    let clock = 1_000;
    const scheduler = new Scheduler(() => clock);
    const ran: Array<{ at: number; n: number; ranAt: number }> = [];
    const record = (entry: { at: number; n: number }): void => void ran.push({ ...entry, ranAt: clock });
    let seed = 7;
    const random = (): number => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
    const asked: Array<{ at: number; n: number }> = [];
    for (let n = 0; n < 20_000; n++) {
      // Whole milliseconds over 50 ms: many wake-ups share a time.
      const entry = { at: 1_000 + Math.floor(random() * 50), n };
      asked.push(entry);
      scheduler.at(entry.at, record, entry);
    }
    expect(scheduler.size).toBe(20_000);
    for (clock = 1_000; clock <= 1_060; clock += 5) await new Promise((r) => setTimeout(r, 2));
    const expected = [...asked].sort((a, b) => a.at - b.at || a.n - b.n).map((e) => e.n);
    expect(ran.map((r) => r.n)).toEqual(expected);
    expect(ran.every((r) => r.ranAt >= r.at)).toBe(true);
    expect(scheduler.size).toBe(0);
    scheduler.stop();
  });
  describe('near and far wake-ups (fake timers)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('runs every wake-up once, in time order, never early: fractions, hours ahead, already due, asked while running', () => {
      vi.useFakeTimers({ now: 1_000_000 });
      const scheduler = new Scheduler(Date.now);
      let seed = 11;
      const random = (): number => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
      type Entry = { at: number; n: number; askedAt: number; ranAt?: number };
      const ran: Entry[] = [];
      const asked: Entry[] = [];
      let n = 0;
      const ask = (at: number, fromRun: boolean): void => {
        const entry: Entry = { at, n: n++, askedAt: Date.now() };
        if (!fromRun) asked.push(entry);
        scheduler.at(at, run, entry);
      };
      const run = (entry: Entry): void => {
        entry.ranAt = Date.now();
        ran.push(entry);
        // Now and then a run asks for more: one already due, one in this millisecond, one later.
        if (entry.n % 97 === 0) {
          ask(Date.now() - 3, true);
          ask(Date.now() + 0.5, true);
          ask(Date.now() + 1_000 * random(), true);
        }
      };
      for (let step = 0; step < 400; step++) {
        for (let i = 0; i < 20; i++) {
          const spread = random() < 0.1 ? 3 * 3_600_000 : random() < 0.3 ? 10_000 : 1_100;
          ask(Date.now() + random() * spread, false);
        }
        vi.advanceTimersByTime(Math.floor(random() * 40));
      }
      vi.advanceTimersByTime(4 * 3_600_000);
      expect(scheduler.size).toBe(0);
      expect(ran).toHaveLength(n);
      expect(new Set(ran.map((e) => e.n)).size).toBe(n);
      for (const entry of ran) expect(entry.ranAt).toBeGreaterThanOrEqual(entry.at);
      // Those asked from outside ran in time order (same times: in the order asked).
      const outside = ran.filter((e) => asked.includes(e)).map((e) => e.n);
      const expected = [...asked].sort((a, b) => a.at - b.at || a.n - b.n).map((e) => e.n);
      expect(outside).toEqual(expected);
      // Nothing ran late: each ran as soon as it was due (or asked, when asked already due).
      const late = ran.map((e) => (e.ranAt as number) - Math.max(e.at, e.askedAt));
      expect(Math.max(...late)).toBeLessThan(1);
      scheduler.stop();
    });

    it('holds room for the wake-ups pending, not for every millisecond at its peak', () => {
      // 20,000 keys, each waking about once a second (fractions of a millisecond apart), for
      // 10 s: lists kept per millisecond at their own peak held ~8 times the pending wake-ups.
      vi.useFakeTimers({ now: 2_000_000 });
      const scheduler = new Scheduler(Date.now);
      const keys = 20_000;
      let runs = 0;
      const wake = (key: number): void => {
        runs++;
        scheduler.at(Date.now() + 1_025 + (key % 7) / 8, wake, key);
      };
      for (let key = 0; key < keys; key++) scheduler.at(Date.now() + (key * 1_000) / keys, wake, key);
      vi.advanceTimersByTime(10_000);
      expect(runs).toBeGreaterThan(keys * 9);
      expect(scheduler.size).toBe(keys);
      expect(scheduler.capacity).toBeLessThanOrEqual(32_768);
      scheduler.stop();
    });

    it('a run that throws loses nothing else: the rest of its millisecond and later ones still run', () => {
      vi.useFakeTimers({ now: 3_000_000 });
      const scheduler = new Scheduler(Date.now);
      const ran: number[] = [];
      const run = (n: number): void => {
        if (n === 2) throw new Error('a bug in a run');
        ran.push(n);
      };
      for (const [n, delay] of [
        [1, 10.1],
        [2, 10.2],
        [3, 10.3],
        [4, 30],
      ] as const)
        scheduler.at(Date.now() + delay, run, n);
      expect(() => vi.advanceTimersByTime(11)).toThrow('a bug in a run');
      vi.advanceTimersByTime(40);
      expect(ran).toEqual([1, 3, 4]);
      expect(scheduler.size).toBe(0);
      scheduler.stop();
    });

    it('after a stop nothing runs and nothing is kept', () => {
      vi.useFakeTimers({ now: 5_000 });
      const scheduler = new Scheduler(Date.now);
      const ran: number[] = [];
      scheduler.at(5_010, (n: number) => ran.push(n), 1);
      scheduler.at(5_000 + 3_600_000, (n: number) => ran.push(n), 2);
      scheduler.stop();
      scheduler.at(5_020, (n: number) => ran.push(n), 3);
      vi.advanceTimersByTime(4_000_000);
      expect(ran).toEqual([]);
      expect(scheduler.size).toBe(0);
    });
  });
});

describe('backoffDelay', () => {
  it('grows exponentially with jitter and is capped', () => {
    expect(backoffDelay(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelay(20, 1000, 60_000, () => 1)).toBe(60_000);
  });
});
