import { jetstreamManager } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import { JOBS_CONSUMER, JOBS_STREAM } from '../../src/bus/streams.ts';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

/**
 * A key whose limit is spent for an hour gets a deep backlog: the node hands each of its jobs
 * back to JetStream with a delay of about an hour, where it stays pending. JetStream stops
 * delivering every key's jobs once max_ack_pending jobs are pending, so that limit must not
 * let one key's backlog stop the others.
 */
describe('a deep backlog behind one key', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const config = (harness: Harness, node: Partial<PrismConfigInput['node']> = {}): PrismConfigInput => ({
    node: { concurrency: 4, maxParked: 50, maxParkedPerKey: 10, metricsInterval: '1s', ...node },
    sources: {
      adjust: {
        allowHosts: [harness.host],
        // One call an hour per account: after its first call, the hot key waits ~1 h.
        limits: [{ key: '{source}/{account}', limit: 1, per: '1h' }],
        apis: { report: {} },
      },
    },
  });

  async function publishBacklog(harness: Harness): Promise<{ hot: string[]; light: string[] }> {
    const hot: string[] = [];
    for (let i = 0; i < 150; i++)
      hot.push(
        await harness.publish({
          id: `hot-${i}`,
          source: 'adjust',
          api: 'report',
          account: 'hot',
          request: { url: `http://${harness.host}/adjust/hot/report` },
        }),
      );
    const light: string[] = [];
    for (let a = 0; a < 10; a++)
      light.push(
        await harness.publish({
          id: `light-${a}`,
          source: 'adjust',
          api: 'report',
          account: `light-${a}`,
          request: { url: `http://${harness.host}/adjust/light-${a}/report` },
        }),
      );
    return { hot, light };
  }

  const pending = async (harness: Harness): Promise<number> =>
    (await (await jetstreamManager(harness.nc)).consumers.info(JOBS_STREAM, JOBS_CONSUMER)).num_ack_pending;

  it('does not hold up other keys: the shared consumer has no max_ack_pending by default', async () => {
    h = await startHarness({ latencyMs: 2 });
    await h.startNode(config(h));
    const { hot, light } = await publishBacklog(h);
    await h.waitFor(light, 15_000);
    expect(light.every((id) => h!.results.get(id)?.status === 'ok')).toBe(true);
    // The hot key made its one call; its other 149 jobs wait in JetStream, none lost or dead.
    expect(hot.filter((id) => h!.results.has(id))).toHaveLength(1);
    expect(hot.filter((id) => h!.dead.has(id))).toHaveLength(0);
    await expect.poll(() => pending(h!), { timeout: 5_000 }).toBe(149);
    expect(h.nodes[0]!.snapshot().jobs.held).toBe(0);
    expect(h.emulator.stats().violations).toBe(0);
  }, 40_000);

  it('with a finite maxAckPending, the backlog stops delivery of every key (why the default has none)', async () => {
    h = await startHarness({ latencyMs: 2 });
    await h.startNode(config(h, { maxAckPending: 60 }));
    const { light } = await publishBacklog(h);
    await expect.poll(() => pending(h!), { timeout: 10_000 }).toBe(60);
    // The light jobs sit in the stream behind the hot key's and are not delivered.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(light.filter((id) => h!.results.has(id))).toHaveLength(0);
    expect(await pending(h)).toBe(60);
  }, 40_000);
});
