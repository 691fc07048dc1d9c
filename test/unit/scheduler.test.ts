import { describe, expect, it } from 'vitest';
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
});

describe('backoffDelay', () => {
  it('grows exponentially with jitter and is capped', () => {
    expect(backoffDelay(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelay(20, 1000, 60_000, () => 1)).toBe(60_000);
  });
});
