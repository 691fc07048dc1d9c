import { describe, expect, it } from 'vitest';
import { DAY_MS, DayCount, msToNextUtcDay } from '../../src/emulator/day-count.ts';

const MIDNIGHT = Date.UTC(2026, 10, 25, 0, 0, 0);

describe('DayCount', () => {
  it('counts per key per UTC day; the limit-th call fills it, the next is refused', () => {
    const days = new DayCount();
    expect(days.arrive('k', MIDNIGHT - 5000, 2)).toEqual({
      count: 1,
      violated: false,
      resetInMs: 5000,
      nextFreeMs: 0,
    });
    expect(days.arrive('k', MIDNIGHT - 4000, 2)).toEqual({
      count: 2,
      violated: false,
      resetInMs: 4000,
      nextFreeMs: 4000,
    });
    expect(days.arrive('k', MIDNIGHT - 1, 2)).toMatchObject({ count: 2, violated: true, nextFreeMs: 1 });
    expect(days.arrive('other', MIDNIGHT - 1, 2).violated).toBe(false);
    expect(days.arrive('k', MIDNIGHT, 2)).toEqual({
      count: 1,
      violated: false,
      resetInMs: DAY_MS,
      nextFreeMs: 0,
    });
  });

  it('measures the time to the next 00:00 UTC', () => {
    expect(msToNextUtcDay(MIDNIGHT)).toBe(DAY_MS);
    expect(msToNextUtcDay(MIDNIGHT + 1)).toBe(DAY_MS - 1);
    expect(msToNextUtcDay(MIDNIGHT - 1)).toBe(1);
  });

  it("drops earlier days' keys once the map has doubled", () => {
    const days = new DayCount();
    for (let i = 0; i < 1024; i++) days.arrive(`old-${i}`, MIDNIGHT - 1, 1);
    expect(days.keys).toBe(1024);
    days.arrive('new', MIDNIGHT, 1);
    expect(days.keys).toBe(1);
    clearedStaysUsable(days);
  });
});

function clearedStaysUsable(days: DayCount): void {
  days.clear();
  expect(days.keys).toBe(0);
  expect(days.arrive('new', MIDNIGHT, 1).violated).toBe(false);
}
