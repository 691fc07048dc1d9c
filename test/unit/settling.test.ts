import { describe, expect, it } from 'vitest';
import { Settling } from '../../src/collect/settling.ts';

/** A settle that ends when the test says so. */
function gate(): { settle: () => Promise<void>; open: () => void; fail: () => void; started: boolean } {
  let open = (): void => undefined;
  let fail = (): void => undefined;
  const g = {
    started: false,
    settle: () => {
      g.started = true;
      return new Promise<void>((resolve, reject) => {
        open = resolve;
        fail = () => reject(new Error('NATS away'));
      });
    },
    open: () => open(),
    fail: () => fail(),
  };
  return g;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Settling: jobs leaving the node without holding a collector', () => {
  it('starts a settle at once while there is room, and resolves before it is done', async () => {
    const settling = new Settling(2);
    const a = gate();
    await settling.admit(a.settle);
    expect(a.started).toBe(true);
    expect(settling.size).toBe(1);
    a.open();
    await settling.idle();
    expect(settling.size).toBe(0);
  });

  it('never runs more than its limit at once: the next waits until one is done', async () => {
    const settling = new Settling(2);
    const gates = [gate(), gate(), gate(), gate()];
    await settling.admit(gates[0]!.settle);
    await settling.admit(gates[1]!.settle);
    let thirdAdmitted = false;
    let fourthAdmitted = false;
    void settling.admit(gates[2]!.settle).then(() => (thirdAdmitted = true));
    void settling.admit(gates[3]!.settle).then(() => (fourthAdmitted = true));
    await turn();
    expect([thirdAdmitted, fourthAdmitted, gates[2]!.started]).toEqual([false, false, false]);
    expect(settling.size).toBe(2);
    // A failed settle makes room too (it handles its own failure; a rejection is only swallowed).
    gates[0]!.fail();
    await turn();
    expect([thirdAdmitted, fourthAdmitted]).toEqual([true, false]);
    expect(settling.size).toBe(2);
    gates[1]!.open();
    await turn();
    expect(fourthAdmitted).toBe(true);
    expect(settling.size).toBe(2);
    let idle = false;
    void settling.idle().then(() => (idle = true));
    gates[2]!.open();
    await turn();
    expect(idle).toBe(false);
    gates[3]!.open();
    await turn();
    expect(idle).toBe(true);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new Settling(0)).toThrow(/positive integer/);
    expect(() => new Settling(1.5)).toThrow(/positive integer/);
  });
});
