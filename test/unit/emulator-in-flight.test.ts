import { describe, expect, it } from 'vitest';
import { InFlightGauge } from '../../src/emulator/in-flight.ts';

describe('InFlightGauge', () => {
  it('counts per key, keeps the maximum, and deletes a key at 0', () => {
    const g = new InFlightGauge();
    expect([g.enter('a'), g.enter('a'), g.enter('b'), g.enter('a')]).toEqual([1, 2, 1, 3]);
    expect(g.max).toBe(3);
    expect(g.keys).toBe(2);
    g.leave('a');
    g.leave('b');
    expect([g.count('a'), g.count('b'), g.keys]).toEqual([2, 0, 1]);
    g.leave('a');
    g.leave('a');
    expect(g.keys).toBe(0);
    expect(g.max).toBe(3);
  });

  it('never goes below 0 on a stray leave', () => {
    const g = new InFlightGauge();
    g.leave('a');
    g.enter('a');
    g.leave('a');
    g.leave('a');
    expect(g.count('a')).toBe(0);
    expect(g.enter('a')).toBe(1);
  });

  it('resetMax starts over from what is in flight now', () => {
    const g = new InFlightGauge();
    g.enter('a');
    g.enter('a');
    g.enter('a');
    g.enter('b');
    g.leave('a');
    g.resetMax();
    expect(g.max).toBe(2);
    g.leave('a');
    g.leave('a');
    g.leave('b');
    g.resetMax();
    expect(g.max).toBe(0);
  });
});
