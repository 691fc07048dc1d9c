import type { NatsConnection } from '@nats-io/transport-node';
import type { JobMessage } from './job-message.ts';
import { NatsJobMessage, type JobIntake, type JobRecord } from './job-source.ts';

/** Jobs the node's intake hands a shard in one message, with the tickets it knows them by. */
export interface JobBatch {
  type: 'jobs';
  tickets: number[];
  records: JobRecord[];
}

/** A job held by a shard: acked on the shard's own connection, known to the intake by its ticket. */
class ShardJobMessage extends NatsJobMessage {
  readonly ticket: number;
  constructor(ticket: number, record: JobRecord, nc: NatsConnection, onSettled: (m: NatsJobMessage) => void) {
    super(record, nc, onSettled);
    this.ticket = ticket;
  }
}

/**
 * A shard's side of a sharded node's intake (src/runtime/sharded-node.ts): the node's main thread
 * pulls from JetStream and hands each job to the shard that owns its limits; the shard holds it,
 * acks or naks it through its reply subject on the shard's own NATS connection, and tells the
 * main thread which tickets it settled (batched per turn), so that the node pulls more.
 * In-progress acks stay with the main thread, which holds every job until then.
 */
export class ShardIntake implements JobIntake {
  private readonly held = new Set<ShardJobMessage>();
  private settled: number[] = [];
  private reportScheduled = false;
  private readonly nc: NatsConnection;
  private readonly deliver: (message: JobMessage) => void;
  private readonly report: (tickets: number[]) => void;

  constructor(
    nc: NatsConnection,
    deliver: (message: JobMessage) => void,
    report: (tickets: number[]) => void,
  ) {
    this.nc = nc;
    this.deliver = deliver;
    this.report = report;
  }

  receive(batch: JobBatch): void {
    for (let i = 0; i < batch.records.length; i++) {
      const message = new ShardJobMessage(
        batch.tickets[i] as number,
        batch.records[i] as JobRecord,
        this.nc,
        (m) => this.release(m as ShardJobMessage),
      );
      this.held.add(message);
      this.deliver(message);
    }
  }

  get heldCount(): number {
    return this.held.size;
  }

  heldMessages(): JobMessage[] {
    return [...this.held];
  }

  /** The main thread pulls; a shard starts and stops nothing. */
  start(): void {}

  stopPulling(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.flush();
  }

  private release(message: ShardJobMessage): void {
    if (!this.held.delete(message)) return;
    this.settled.push(message.ticket);
    if (this.reportScheduled) return;
    this.reportScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.reportScheduled = false;
    if (this.settled.length === 0) return;
    const tickets = this.settled;
    this.settled = [];
    this.report(tickets);
  }
}
