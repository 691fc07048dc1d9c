import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedSignalsLedger } from '../../src/limits/shared-signals.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('SharedSignalsLedger: pauses and slowdowns reach every shard of a node', () => {
  const ledgers: SharedSignalsLedger[] = [];
  const shardLedgers = (shards: number, channelName = `test-${randomUUID()}`) =>
    Array.from({ length: shards }, () => {
      const ledger = new SharedSignalsLedger({ channelName, shards, now: Date.now });
      ledgers.push(ledger);
      return ledger;
    });
  afterEach(async () => {
    await Promise.all(ledgers.splice(0).map((l) => l.close()));
  });

  it('holds a pause learned on one shard on the others', async () => {
    const [a, b, c] = shardLedgers(3) as [SharedSignalsLedger, SharedSignalsLedger, SharedSignalsLedger];
    const until = Date.now() + 60_000;
    await a.pause('meta', until, 'meta-app-limit');
    await tick();
    for (const ledger of [a, b, c])
      expect(ledger.pausedUntil('meta', Date.now())).toEqual({ until, reason: 'meta-app-limit' });
    expect(b.hasSignals).toBe(true);
  });

  it('keeps a slowdown as one call per interval × shards on every shard', async () => {
    const [a, b] = shardLedgers(2) as [SharedSignalsLedger, SharedSignalsLedger];
    await b.slow('meta/act_1', Date.now() + 60_000, 2_000, 'usage 80%', Date.now());
    await tick();
    expect(a.slowedBy('meta/act_1', Date.now())?.intervalMs).toBe(4_000);
    expect(b.slowedBy('meta/act_1', Date.now())?.intervalMs).toBe(4_000);
  });

  it('does not reach the shards of another node', async () => {
    const [a] = shardLedgers(2);
    const [other] = shardLedgers(2);
    await a!.pause('meta', Date.now() + 60_000, 'x');
    await tick();
    expect(other!.pausedUntil('meta', Date.now())).toBeUndefined();
  });
});
