import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { PageRequest } from '../limits/pagination.ts';
import type { StoredObject } from '../storage/storage.ts';

/**
 * Where a paginated job stands after a page was stored: a redelivered job (its node died on
 * page 40 of 60) continues at page 41 instead of spending quota on pages it already has.
 * The request's URL is stripped of credentials before it is written.
 */
export interface Checkpoint {
  /** Index of the next page to fetch, and its request. */
  page: number;
  request: PageRequest;
  objects: StoredObject[];
  startedAt: number;
}

export interface CheckpointStore {
  load(jobId: string): Promise<Checkpoint | undefined>;
  save(jobId: string, checkpoint: Checkpoint): Promise<void>;
  clear(jobId: string): Promise<void>;
}

export const CHECKPOINTS_BUCKET = 'PRISM_CHECKPOINTS';

export class KvCheckpointStore implements CheckpointStore {
  private readonly kv: KV;

  private constructor(kv: KV) {
    this.kv = kv;
  }

  static async open(nc: NatsConnection): Promise<KvCheckpointStore> {
    return new KvCheckpointStore(
      await new Kvm(nc).create(CHECKPOINTS_BUCKET, { history: 1, ttl: 7 * 86_400_000 }),
    );
  }

  async load(jobId: string): Promise<Checkpoint | undefined> {
    const entry = await this.kv.get(checkpointKey(jobId));
    return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<Checkpoint>();
  }

  async save(jobId: string, checkpoint: Checkpoint): Promise<void> {
    await this.kv.put(checkpointKey(jobId), JSON.stringify(checkpoint));
  }

  async clear(jobId: string): Promise<void> {
    await this.kv.delete(checkpointKey(jobId));
  }
}

/** Job ids may hold characters KV keys do not allow; hex keeps them exact. */
const checkpointKey = (jobId: string): string => `j.${Buffer.from(jobId, 'utf8').toString('hex')}`;
