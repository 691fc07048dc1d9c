import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyBudget, type BodyLease } from '../../src/http/body-budget.ts';

/** Resolves to whether `wait` settled within a turn of the event loop (it never rejects). */
async function settled(wait: Promise<void> | undefined): Promise<boolean> {
  if (wait === undefined) return true;
  let done = false;
  void wait.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('BodyBudget', () => {
  it('counts what readers hold and lets them read on while it fits', () => {
    const budget = new BodyBudget(100);
    const a = budget.lease();
    const b = budget.lease();
    expect(a.grow(40)).toBeUndefined();
    expect(b.grow(60)).toBeUndefined();
    expect(budget.held).toBe(100);
    a.release();
    expect(budget.held).toBe(60);
    expect(budget.peak).toBe(100);
    expect(budget.waits).toBe(0);
    expect(budget.openCount).toBe(1);
  });

  it('stops a reader that takes the node over its budget, but never the oldest', async () => {
    const budget = new BodyBudget(100);
    const oldest = budget.lease();
    const next = budget.lease();
    expect(oldest.grow(80)).toBeUndefined();
    const wait = next.grow(30);
    expect(wait).toBeInstanceOf(Promise);
    expect(await settled(wait)).toBe(false);
    // The oldest reads its whole body whatever the others hold: the node always moves.
    expect(oldest.grow(500)).toBeUndefined();
    expect(budget.held).toBe(610);
    expect(budget.waits).toBe(1);
    expect(budget.waitingCount).toBe(1);
    // Stored: its bytes are free, and the reader behind it goes on.
    oldest.release();
    expect(await settled(wait)).toBe(true);
    expect(budget.held).toBe(30);
    expect(budget.waitingCount).toBe(0);
  });

  it('wakes waiters first in, first out, only as many as there is room for', async () => {
    const budget = new BodyBudget(100);
    const first = budget.lease();
    const a = budget.lease();
    const b = budget.lease();
    const c = budget.lease();
    first.grow(90);
    const waitA = a.grow(40);
    const waitB = b.grow(40);
    const waitC = c.grow(10);
    expect(budget.waitingCount).toBe(3);
    // 100 - (40 + 40 + 10) = 10 bytes held by waiters in hand; freeing 90 leaves room for one
    // 40-byte chunk beyond what they hold, not for each of them.
    first.release();
    expect(await settled(waitA)).toBe(true);
    expect(await settled(waitB)).toBe(false);
    // C would fit, but it does not overtake B.
    expect(await settled(waitC)).toBe(false);
    // A read its next chunk: the room it was promised is now held; B and C still wait.
    expect(a.grow(5)).toBeUndefined();
    a.release();
    expect(await settled(waitB)).toBe(true);
    expect(await settled(waitC)).toBe(true);
  });

  it('resumes a waiter that became the oldest even when there is no room', async () => {
    const budget = new BodyBudget(100);
    const first = budget.lease();
    const second = budget.lease();
    const third = budget.lease();
    first.grow(50);
    third.grow(50);
    const wait = second.grow(80);
    expect(budget.held).toBe(180);
    first.release();
    // 130 held, over the budget: the second is the oldest now, so it reads on.
    expect(await settled(wait)).toBe(true);
    expect(second.grow(1_000)).toBeUndefined();
  });

  it('forgets a waiter whose call was given up, and frees what it held', async () => {
    const budget = new BodyBudget(100);
    const first = budget.lease();
    const gaveUp = budget.lease();
    first.grow(100);
    const wait = gaveUp.grow(20);
    gaveUp.release();
    gaveUp.release();
    expect(budget.waitingCount).toBe(0);
    expect(budget.held).toBe(100);
    first.release();
    expect(budget.held).toBe(0);
    expect(await settled(wait)).toBe(false);
  });

  it('refuses a size that is not positive', () => {
    expect(() => new BodyBudget(0)).toThrow(/positive size/);
    expect(() => new BodyBudget(Number.NaN)).toThrow(/positive size/);
  });

  /**
   * Readers of random bodies in random order, each storing its body some steps after reading it:
   * the node never stalls (while a body is unfinished, some reader can act), and it never holds
   * more than the budget plus the oldest body plus the chunk each waiting reader has in hand.
   */
  it('never stalls and stays within its bound, whatever the bodies and the order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 400 }),
        fc.array(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 8 }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
        async (maxBytes, bodies, picks) => {
          const budget = new BodyBudget(maxBytes);
          interface Reader {
            lease: BodyLease;
            chunks: number[];
            next: number;
            waiting: boolean;
            done: boolean;
          }
          const readers: Reader[] = bodies.map((chunks) => ({
            lease: budget.lease(),
            chunks,
            next: 0,
            waiting: false,
            done: false,
          }));
          const largest = Math.max(...bodies.map((chunks) => chunks.reduce((x, y) => x + y, 0)));
          let pick = 0;
          while (readers.some((r) => !r.done)) {
            const runnable = readers.filter((r) => !r.done && !r.waiting);
            expect(runnable.length).toBeGreaterThan(0);
            const reader = runnable[(picks[pick++ % picks.length] ?? 0) % runnable.length] as Reader;
            if (reader.next < reader.chunks.length) {
              const wait = reader.lease.grow(reader.chunks[reader.next++] as number);
              if (wait !== undefined) {
                reader.waiting = true;
                void wait.then(() => (reader.waiting = false));
              }
            } else {
              reader.lease.release();
              reader.done = true;
            }
            // Let resumed readers see it (a promise's callback runs on the microtask queue).
            await Promise.resolve();
            const inHand = readers.filter((r) => r.waiting).length * 100;
            expect(budget.held).toBeLessThanOrEqual(maxBytes + largest + inHand);
          }
          expect(budget.held).toBe(0);
          expect(budget.waitingCount).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
