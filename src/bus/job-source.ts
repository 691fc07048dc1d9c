import type { Consumer, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { payloadText } from '../messages/job.ts';
import type { JobMessage } from './job-message.ts';
import { JOBS_CONSUMER, JOBS_STREAM } from './streams.ts';

export interface JobSourceOptions {
  /** Jobs this node may hold at once; it pulls no more until some are settled. */
  maxHeld: number;
  /** Largest pull; smaller pulls spread a backlog over the nodes. */
  batch: number;
  ackWaitMs: number;
  deliver: (message: JobMessage) => void;
  log: Logger;
}

/**
 * Pulls jobs from the durable consumer that all nodes share, never holding more than `maxHeld`:
 * the rest of a backlog waits in JetStream, not in this node's memory. Every held job gets an
 * in-progress ack well before ack_wait, so a long wait behind a limit is not taken for a dead node.
 */
export class JobSource implements JobIntake {
  private readonly held = new Set<NatsJobMessage>();
  private running = false;
  private loop: Promise<void> | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private wakeLoop: (() => void) | undefined;
  private stopCurrentPull: (() => void) | undefined;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly options: JobSourceOptions;
  pulled = 0;

  /** `nc`: the connection `js` was made on (held jobs are acked through it). */
  constructor(nc: NatsConnection, js: JetStreamClient, options: JobSourceOptions) {
    this.nc = nc;
    this.js = js;
    this.options = options;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** The messages currently held (for draining: hand them back). */
  heldMessages(): JobMessage[] {
    return [...this.held];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.pullLoop();
    this.keepalive = setInterval(
      () => {
        for (const message of this.held) message.working();
      },
      Math.max(1_000, Math.floor(this.options.ackWaitMs / 3)),
    );
    this.keepalive.unref();
  }

  /** Stops pulling; held jobs stay held until settled. */
  async stopPulling(): Promise<void> {
    this.running = false;
    this.stopCurrentPull?.();
    this.wakeLoop?.();
    await this.loop;
  }

  /** Stops the in-progress acks too (after every held job was settled or handed back). */
  close(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
  }

  private release(message: NatsJobMessage): void {
    if (this.held.delete(message)) this.wakeLoop?.();
  }

  private async pullLoop(): Promise<void> {
    const { log } = this.options;
    let consumer: Consumer | undefined;
    let failures = 0;
    while (this.running) {
      const room = this.options.maxHeld - this.held.size;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        this.wakeLoop = undefined;
        continue;
      }
      try {
        consumer ??= await this.js.consumers.get(JOBS_STREAM, JOBS_CONSUMER);
        const messages = await consumer.fetch({
          max_messages: Math.min(room, this.options.batch),
          expires: 2_000,
        });
        this.stopCurrentPull = () => messages.stop();
        for await (const msg of messages) {
          const message = NatsJobMessage.pulled(msg, this.nc, (m) => this.release(m));
          this.held.add(message);
          this.pulled++;
          this.options.deliver(message);
        }
        failures = 0;
      } catch (error) {
        if (!this.running) break;
        failures++;
        consumer = undefined;
        log.warn({ err: error, failures }, 'pulling jobs failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * failures)));
      } finally {
        this.stopCurrentPull = undefined;
      }
    }
  }
}

/** A held job as plain data, passed between threads (structured clone). */
export interface JobRecord {
  subject: string;
  data: string | Uint8Array;
  msgId: string | undefined;
  deliveryCount: number;
  streamSeq: number;
  /** The JetStream ack subject: whoever holds the job acks, naks and keeps it alive there. */
  reply: string;
}

/** Where a node's jobs come from: JetStream itself (JobSource), or a sharded node's intake. */
export interface JobIntake {
  start(): void;
  readonly heldCount: number;
  heldMessages(): JobMessage[];
  stopPulling(): Promise<void>;
  close(): void;
}

/** JetStream's acknowledgement protocol: what nats.js's JsMsg sends to a message's reply subject. */
const encoder = new TextEncoder();
const ACK = encoder.encode('+ACK');
const NAK = encoder.encode('-NAK');
const IN_PROGRESS = encoder.encode('+WPI');
const nakAfter = (delayMs: number): Uint8Array =>
  encoder.encode(`-NAK ${JSON.stringify({ delay: nanos(delayMs) })}`);

/**
 * Where a job's acks go: its reply subject. nats.js's JsMsg acks by publishing there and has it as
 * a getter its type does not list; a test pulls real jobs through it (job-source.test.ts).
 */
function ackSubject(msg: JsMsg): string {
  const reply = (msg as JsMsg & { readonly reply?: unknown }).reply;
  if (typeof reply !== 'string' || !reply.startsWith('$JS.ACK.'))
    throw new Error(`a job pulled from ${msg.subject} has no JetStream ack subject`);
  return reply;
}

/**
 * A pulled job, detached from the nats.js message it came in. nats.js gives a message its payload
 * as a view into the socket read that brought it (~55 KB, the jobs of a whole read), so a job
 * held as its `JsMsg` held that read: a node finishes most jobs of a pull within moments but holds
 * a few for long (their keys wait for a limit), and each of those kept ~55 KB instead of its
 * ~0.6 KB (10,000 jobs pulled, 100 held: 5.7 MB; test/integration/job-source.test.ts). It keeps
 * the payload as its text (a string of its own: the router parses that text; a copy of the bytes
 * cost a Uint8Array, an ArrayBuffer and a backing store outside the heap, ~200 B more a job in
 * `npm run bench:parked`), or as a copy of its bytes when they are not UTF-8 (a dead letter to
 * be), and the reply subject; it acks, naks and marks itself in progress as `JsMsg` does, by
 * publishing to that subject.
 */
export class NatsJobMessage implements JobMessage {
  readonly subject: string;
  readonly data: string | Uint8Array;
  readonly msgId: string | undefined;
  readonly deliveryCount: number;
  readonly streamSeq: number;
  settled = false;
  private readonly reply: string;
  private readonly nc: NatsConnection;
  private readonly onSettled: (m: NatsJobMessage) => void;

  /** A held job from its record: a pulled message (`pulled`), or one a sharded node's intake passed on. */
  constructor(record: JobRecord, nc: NatsConnection, onSettled: (m: NatsJobMessage) => void) {
    this.subject = record.subject;
    this.data = record.data;
    this.msgId = record.msgId;
    this.deliveryCount = record.deliveryCount;
    this.streamSeq = record.streamSeq;
    this.reply = record.reply;
    this.nc = nc;
    this.onSettled = onSettled;
  }

  static pulled(msg: JsMsg, nc: NatsConnection, onSettled: (m: NatsJobMessage) => void): NatsJobMessage {
    const { deliveryCount, streamSequence } = msg.info;
    return new NatsJobMessage(
      {
        subject: msg.subject,
        // Never the payload itself: it is a view into the socket read (and a Buffer's `slice` is too).
        data: payloadText(msg.data) ?? new Uint8Array(msg.data),
        msgId: msg.headers?.get('Nats-Msg-Id') || undefined,
        deliveryCount,
        streamSeq: streamSequence,
        reply: ackSubject(msg),
      },
      nc,
      onSettled,
    );
  }

  /** What another thread needs to hold this job and ack it on a connection of its own. */
  record(): JobRecord {
    return {
      subject: this.subject,
      data: this.data,
      msgId: this.msgId,
      deliveryCount: this.deliveryCount,
      streamSeq: this.streamSeq,
      reply: this.reply,
    };
  }

  /** Another thread settled it (through the reply subject): it is no longer held here. */
  forget(): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled(this);
  }

  async ack(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    try {
      // A confirmed ack (JsMsg.ackAck): a lost one means a redelivery, which idempotent output absorbs.
      await this.nc.request(this.reply, ACK, { timeout: 10_000 });
    } finally {
      this.onSettled(this);
    }
  }

  nak(delayMs: number): void {
    if (this.settled) return;
    this.settled = true;
    const delay = Math.max(0, Math.round(delayMs));
    try {
      this.nc.publish(this.reply, delay > 0 ? nakAfter(delay) : NAK);
    } catch {
      // Disconnected: JetStream redelivers it after ack_wait instead, since no one keeps it alive.
    } finally {
      this.onSettled(this);
    }
  }

  working(): void {
    if (this.settled) return;
    try {
      this.nc.publish(this.reply, IN_PROGRESS);
    } catch {
      // Disconnected: the next keepalive tries again; past ack_wait JetStream redelivers it.
    }
  }
}
