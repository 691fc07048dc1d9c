import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Mailbox, NO_MAIL } from '../../src/actors/mailbox.ts';

describe('Mailbox', () => {
  it('hands messages out oldest first, across its two fields and the deque behind them', () => {
    const box = new Mailbox();
    for (const m of ['a', 'b', 'c', 'd']) box.push(m);
    expect(box.length).toBe(4);
    expect(box.toArray()).toEqual(['a', 'b', 'c', 'd']);
    expect(box.shift()).toBe('a');
    box.push('e');
    expect([box.shift(), box.shift(), box.shift(), box.shift()]).toEqual(['b', 'c', 'd', 'e']);
    expect(box.length).toBe(0);
    expect(box.shift()).toBeUndefined();
    expect(box.toArray()).toEqual([]);
  });

  it('behaves as a queue for any sequence of pushes and shifts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer(), fc.constant('shift' as const)), { maxLength: 200 }),
        (ops) => {
          const box = new Mailbox();
          const model: number[] = [];
          for (const op of ops) {
            if (op === 'shift') expect(box.shift()).toBe(model.shift());
            else {
              box.push(op);
              model.push(op);
            }
            expect(box.length).toBe(model.length);
          }
          expect(box.toArray()).toEqual(model);
        },
      ),
    );
  });

  it('the shared empty mailbox refuses mail instead of mixing actors up', () => {
    expect(NO_MAIL.length).toBe(0);
    expect(NO_MAIL.shift()).toBeUndefined();
    expect(() => NO_MAIL.push('x')).toThrow(/Mailbox/);
  });
});
