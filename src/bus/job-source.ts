import type { Consumer, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
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
export class JobSource {
  private readonly held = new Set<NatsJobMessage>();
  private running = false;
  private loop: Promise<void> | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private wakeLoop: (() => void) | undefined;
  private stopCurrentPull: (() => void) | undefined;
  private readonly js: JetStreamClient;
  private readonly options: JobSourceOptions;
  pulled = 0;

  constructor(js: JetStreamClient, options: JobSourceOptions) {
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
          const message = new NatsJobMessage(msg, (m) => this.release(m));
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

class NatsJobMessage implements JobMessage {
  private readonly msg: JsMsg;
  private readonly onSettled: (m: NatsJobMessage) => void;
  settled = false;
  readonly msgId: string | undefined;

  constructor(msg: JsMsg, onSettled: (m: NatsJobMessage) => void) {
    this.msg = msg;
    this.onSettled = onSettled;
    this.msgId = msg.headers?.get('Nats-Msg-Id') || undefined;
  }

  get subject(): string {
    return this.msg.subject;
  }
  get data(): Uint8Array {
    return this.msg.data;
  }
  get deliveryCount(): number {
    return this.msg.info.deliveryCount;
  }
  get streamSeq(): number {
    return this.msg.seq;
  }

  async ack(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    try {
      // A confirmed ack: a lost one means a redelivery, which idempotent output absorbs.
      await this.msg.ackAck({ timeout: 10_000 });
    } finally {
      this.onSettled(this);
    }
  }

  nak(delayMs: number): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.msg.nak(Math.max(0, Math.round(delayMs)));
    } catch {
      // Disconnected: JetStream redelivers it after ack_wait instead, since no one keeps it alive.
    } finally {
      this.onSettled(this);
    }
  }

  working(): void {
    if (!this.settled) this.msg.working();
  }
}
