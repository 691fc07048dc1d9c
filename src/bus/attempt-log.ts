import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Real attempts per job (failed calls), counted outside JetStream's delivery count: parking a
 * job with nak(delay) is also a delivery, and must not use up its attempts.
 */
export interface AttemptLog {
  failures(jobId: string): Promise<number>;
  /** Adds one failure and returns the new count. */
  recordFailure(jobId: string): Promise<number>;
  clear(jobId: string): Promise<void>;
}

export const ATTEMPTS_BUCKET = 'PRISM_ATTEMPTS';

export class KvAttemptLog implements AttemptLog {
  private readonly kv: KV;

  private constructor(kv: KV) {
    this.kv = kv;
  }

  static async open(nc: NatsConnection): Promise<KvAttemptLog> {
    // Entries expire: a job that is never seen again must not leave its count behind for ever.
    const kv = await new Kvm(nc).create(ATTEMPTS_BUCKET, { history: 1, ttl: 7 * 86_400_000 });
    return new KvAttemptLog(kv);
  }

  async failures(jobId: string): Promise<number> {
    const entry = await this.kv.get(kvKey(jobId));
    return entry === null || entry.operation !== 'PUT' ? 0 : Number(entry.string()) || 0;
  }

  async recordFailure(jobId: string): Promise<number> {
    const key = kvKey(jobId);
    for (let tries = 0; ; tries++) {
      const entry = await this.kv.get(key);
      const current = entry === null || entry.operation !== 'PUT' ? 0 : Number(entry.string()) || 0;
      try {
        if (entry === null) await this.kv.create(key, String(current + 1));
        else await this.kv.update(key, String(current + 1), entry.revision);
        return current + 1;
      } catch (error) {
        if (tries >= 5) throw error;
      }
    }
  }

  async clear(jobId: string): Promise<void> {
    await this.kv.delete(kvKey(jobId));
  }
}

/** Job ids may hold characters KV keys do not allow; hex keeps them exact. */
const kvKey = (jobId: string): string => `j.${Buffer.from(jobId, 'utf8').toString('hex')}`;

export class MemoryAttemptLog implements AttemptLog {
  private readonly counts = new Map<string, number>();
  async failures(jobId: string): Promise<number> {
    return this.counts.get(jobId) ?? 0;
  }
  async recordFailure(jobId: string): Promise<number> {
    const next = (this.counts.get(jobId) ?? 0) + 1;
    this.counts.set(jobId, next);
    return next;
  }
  async clear(jobId: string): Promise<void> {
    this.counts.delete(jobId);
  }
}
