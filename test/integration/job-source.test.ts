import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/bus/nats-connection.ts';
import type { JobMessage } from '../../src/bus/job-message.ts';
import { JobSource } from '../../src/bus/job-source.ts';
import { defaultStreamSettings, ensureStreams, JOBS_CONSUMER, JOBS_STREAM } from '../../src/bus/streams.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';

// A full collection on demand, without starting the test workers with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes held by ArrayBuffers after full collections (Buffers and typed arrays count here). */
function arrayBufferBytes(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().arrayBuffers;
}

/** A job of about 600 bytes, as a producer would publish it. */
const jobBody = (i: number): Uint8Array =>
  new TextEncoder().encode(
    JSON.stringify({
      id: `job-${i}`,
      source: 'meta',
      api: 'insights',
      account: `act_${i}`,
      request: {
        method: 'GET',
        url: 'https://graph.facebook.com/v21.0/insights',
        query: { pad: 'x'.repeat(450) },
      },
    }),
  );

describe('JobSource: the jobs a node holds', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let source: JobSource | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectNats({ url: nats.url, name: 'job-source-test' });
    js = jetstream(nc);
  });
  afterEach(async () => {
    await source?.stopPulling();
    source?.close();
    source = undefined;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(JOBS_STREAM).catch(() => undefined);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const pullAll = async (count: number, ackWaitMs = 30_000): Promise<JobMessage[]> => {
    await ensureStreams(nc, { ...defaultStreamSettings, ackWaitMs });
    const held: JobMessage[] = [];
    source = new JobSource(nc, js, {
      maxHeld: count,
      batch: 256,
      ackWaitMs,
      deliver: (message) => held.push(message),
      log: pino({ level: 'silent' }),
    });
    source.start();
    await expect.poll(() => held.length, { timeout: 20_000 }).toBe(count);
    return held;
  };

  it('keeps only its own copy of a held job, not the socket read it arrived in', async () => {
    const count = 10_000;
    await ensureStreams(nc, defaultStreamSettings);
    for (let i = 0; i < count; i += 500)
      await Promise.all(
        Array.from({ length: 500 }, (_, j) =>
          js.publish(`prism.jobs.meta.insights.act_${i + j}`, jobBody(i + j)),
        ),
      );
    const before = arrayBufferBytes();
    const held = await pullAll(count);
    // As on a node: most jobs leave within moments, a few wait long for their key's limit.
    const waiting = held.filter((_, i) => i % 100 === 0);
    await Promise.all(held.filter((_, i) => i % 100 !== 0).map((message) => message.ack()));
    held.length = 0;
    const retained = arrayBufferBytes() - before;
    // 100 jobs of ~600 bytes. Holding nats.js's messages kept each one's whole socket read
    // (~55 KB): 5.7 MB for these 100.
    expect(waiting).toHaveLength(100);
    expect(retained).toBeLessThan(1_000_000);
    // Each kept as its text: a string of its own (a job that is not UTF-8 keeps a copy of its
    // bytes: the next test).
    for (const message of waiting) expect(typeof message.data).toBe('string');
    await Promise.all(waiting.map((message) => message.ack()));
  });

  it('keeps a payload that is not UTF-8 as a copy of its bytes, for its dead letter', async () => {
    await ensureStreams(nc, defaultStreamSettings);
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
    await js.publish('prism.jobs.meta.insights.act_1', bytes);
    // And one that starts with a byte-order mark keeps it: its text encodes back to its bytes.
    const withMark = new Uint8Array([0xef, 0xbb, 0xbf, ...jobBody(2)]);
    await js.publish('prism.jobs.meta.insights.act_2', withMark);
    const [binary, marked] = await pullAll(2);
    expect(binary?.data).toBeInstanceOf(Uint8Array);
    const copy = binary?.data as Uint8Array;
    expect([...copy]).toEqual([...bytes]);
    expect(copy.byteLength).toBe(copy.buffer.byteLength);
    expect(typeof marked?.data).toBe('string');
    expect(Buffer.from(marked?.data as string, 'utf8').equals(Buffer.from(withMark))).toBe(true);
    await Promise.all([binary?.ack(), marked?.ack()]);
  });

  it('reads what JetStream says of a job, and acks, naks and holds it as nats.js would', async () => {
    await ensureStreams(nc, defaultStreamSettings);
    const h = natsHeaders();
    h.set('Nats-Msg-Id', 'producer-id-1');
    await js.publish('prism.jobs.meta.insights.act_1', jobBody(1), { headers: h });
    await js.publish('prism.jobs.meta.insights.act_2', jobBody(2));
    const [first, second] = await pullAll(2);
    expect(first?.subject).toBe('prism.jobs.meta.insights.act_1');
    expect(first?.data).toBe(new TextDecoder().decode(jobBody(1)));
    expect(first?.msgId).toBe('producer-id-1');
    expect(second?.msgId).toBeUndefined();
    expect(first?.deliveryCount).toBe(1);
    expect([first?.streamSeq, second?.streamSeq]).toEqual([1, 2]);

    // A confirmed ack removes the job from the work queue; a nak with a delay brings it back then.
    await source?.stopPulling();
    await first?.ack();
    expect(first?.settled).toBe(true);
    const nakAt = Date.now();
    second?.nak(500);
    expect(second?.settled).toBe(true);
    expect(source?.heldCount).toBe(0);
    const again: JobMessage[] = [];
    source = new JobSource(nc, js, {
      maxHeld: 10,
      batch: 10,
      ackWaitMs: 30_000,
      deliver: (message) => again.push(message),
      log: pino({ level: 'silent' }),
    });
    source.start();
    await expect.poll(() => again.length, { timeout: 20_000 }).toBe(1);
    expect(Date.now() - nakAt).toBeGreaterThanOrEqual(450);
    expect(again[0]?.streamSeq).toBe(2);
    expect(again[0]?.deliveryCount).toBe(2);
    await again[0]?.ack();
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);
  });

  it('keeps a held job from being redelivered past ack_wait (in-progress acks)', async () => {
    await ensureStreams(nc, { ...defaultStreamSettings, ackWaitMs: 2_000 });
    await js.publish('prism.jobs.meta.insights.act_1', jobBody(1));
    const [held] = await pullAll(1, 2_000);
    // Two and a half ack waits: the source's keepalive marks it in progress every second.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const jsm = await jetstreamManager(nc);
    const consumer = await jsm.consumers.info(JOBS_STREAM, JOBS_CONSUMER);
    expect(consumer.num_redelivered).toBe(0);
    expect(consumer.num_ack_pending).toBe(1);
    await held?.ack();
  });
});
