import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { backoffDelay } from '../../src/runtime/backoff.ts';

describe('Scheduler', () => {
  it('runs wake-ups in time order on one timer, skipping cancelled ones', async () => {
    const scheduler = new Scheduler();
    const order: number[] = [];
    const now = Date.now();
    for (const [i, delay] of [
      [3, 30],
      [1, 10],
      [2, 20],
      [4, 40],
    ] as const)
      scheduler.at(now + delay, () => order.push(i));
    const cancel = scheduler.at(now + 15, () => order.push(99));
    cancel();
    await new Promise((r) => setTimeout(r, 80));
    expect(order).toEqual([1, 2, 3, 4]);
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
