import {
  AckPolicy,
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';

export const JOBS_STREAM = 'PRISM_JOBS';
export const RESULTS_STREAM = 'PRISM_RESULTS';
export const DLQ_STREAM = 'PRISM_DLQ';
export const JOBS_CONSUMER = 'prism-nodes';

export interface StreamSettings {
  ackWaitMs: number;
  /** Jobs unacked at once across the cluster (max_ack_pending of the shared consumer; -1: no limit). */
  maxAckPending: number;
  /** How long result events and dead letters are kept. */
  resultsMaxAgeMs: number;
  dlqMaxAgeMs: number;
}

export const defaultStreamSettings: StreamSettings = {
  ackWaitMs: 30_000,
  maxAckPending: -1,
  resultsMaxAgeMs: 7 * 86_400_000,
  dlqMaxAgeMs: 30 * 86_400_000,
};

/**
 * Creates (or updates) the streams and the shared durable consumer, then reads them back:
 * nats-server 2.9 silently drops fields it does not know and still reports success, so a node
 * checks that the server kept what it set.
 */
export async function ensureStreams(nc: NatsConnection, settings: StreamSettings): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const streams: Array<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
    {
      name: JOBS_STREAM,
      subjects: ['prism.jobs.>'],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(120_000),
    },
    {
      name: RESULTS_STREAM,
      subjects: ['prism.results.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(settings.resultsMaxAgeMs),
      duplicate_window: nanos(120_000),
    },
    {
      name: DLQ_STREAM,
      subjects: ['prism.dlq.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(settings.dlqMaxAgeMs),
      duplicate_window: nanos(120_000),
    },
  ];
  for (const config of streams) {
    let info;
    try {
      await jsm.streams.info(config.name);
      info = await jsm.streams.update(config.name, config);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      info = await jsm.streams.add(config);
    }
    expectKept(
      `stream ${config.name}`,
      config as unknown as Record<string, unknown>,
      info.config as unknown as Record<string, unknown>,
    );
  }
  const consumer = {
    durable_name: JOBS_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(settings.ackWaitMs),
    // Attempts are counted by the node (parking with nak(delay) also uses deliveries).
    max_deliver: -1,
    max_ack_pending: settings.maxAckPending,
  };
  let consumerInfo;
  try {
    await jsm.consumers.info(JOBS_STREAM, JOBS_CONSUMER);
    consumerInfo = await jsm.consumers.update(JOBS_STREAM, JOBS_CONSUMER, consumer);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    consumerInfo = await jsm.consumers.add(JOBS_STREAM, consumer);
  }
  expectKept(
    `consumer ${JOBS_CONSUMER}`,
    consumer,
    consumerInfo.config as unknown as Record<string, unknown>,
  );
  return jsm;
}

function expectKept(what: string, wanted: Record<string, unknown>, got: Record<string, unknown>): void {
  for (const [field, value] of Object.entries(wanted)) {
    const kept = got[field];
    if (JSON.stringify(kept) !== JSON.stringify(value)) {
      throw new Error(
        `the NATS server did not keep ${what}.${field} (set ${JSON.stringify(value)}, got ${JSON.stringify(kept)}); is it too old?`,
      );
    }
  }
}

function isNotFound(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return /not found/i.test(text) || (error as { code?: unknown })?.code === 404;
}
