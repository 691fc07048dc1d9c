import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { jetstream } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { JobMessage } from '../bus/job-message.ts';
import { JobSource, type JobRecord, type NatsJobMessage } from '../bus/job-source.ts';
import { closedForGood, type NatsSecurity } from '../bus/nats-connection.ts';
import type { PrismConfig } from '../config/schema.ts';
import { shardOf } from '../limits/shard-affinity.ts';
import { connectNode } from '../system.ts';
import { backoffDelay } from './backoff.ts';
import { createLogger } from './logger.ts';
import type { FromShard, ShardSetup, ToShard } from './shard-worker.ts';

export interface ShardedNodeOptions {
  config: PrismConfig;
  natsUrl: string;
  natsSecurity?: NatsSecurity;
  /** `file:./data` or `s3://bucket/prefix`: each shard opens its own. */
  storage: string;
  name?: string;
  /** Requests in flight on the whole node, shared out between the shards. */
  concurrency?: number;
  log?: Logger;
}

export interface ShardedNode {
  readonly name: string;
  /** How each shard answers `prism status`: `<name>#<index>`. */
  readonly shardNames: readonly string[];
  /** Stops pulling; each shard hands its parked jobs back and finishes its calls; then closes. */
  drain(): Promise<void>;
  /** Settles if the main thread's NATS connection closes for good (see PrismNode.connectionLost). */
  readonly connectionLost: Promise<Error>;
  /** Each shard: running or not, how often it was started again, jobs it holds. */
  shards(): Array<{ name: string; running: boolean; restarts: number; held: number }>;
  /**
   * Stops a shard as a crash would (fault tests; an operator's last resort for a stuck shard): its
   * jobs go back to JetStream and it is started again.
   */
  terminateShard(index: number): Promise<void>;
}

/** One shard as the main thread sees it. */
interface Shard {
  readonly index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** The jobs it holds, by ticket: the main thread keeps them alive and hands them back if it dies. */
  readonly held: Map<number, NatsJobMessage>;
  /** Jobs not yet posted to it (this turn's, or while it starts). */
  tickets: number[];
  records: JobRecord[];
  crashes: number;
  restarts: number;
  exited: Promise<void>;
}

/**
 * A node whose keys are split over `config.node.shards` worker threads, each a whole node with a
 * heap of its own (src/runtime/shard-worker.ts), so that no single heap holds every key: at
 * 100,000 keys, one heap's full collections stall the thread that dispatches calls for 100 ms
 * and more, and two heaps of 50,000 keys are marked in small steps (docs/benchmarks.md,
 * "Worker-thread shards").
 *
 * The main thread pulls jobs from JetStream (JobSource: at most `maxParked` held, in-progress
 * acks while held) and hands each to the shard that owns its limit keys (shardOf). A shard acks
 * or naks a job itself, through its reply subject, and tells the main thread, which then pulls
 * more. A shard that dies is started again (with backoff); its jobs go back to JetStream at once.
 */
export async function startShardedNode(options: ShardedNodeOptions): Promise<ShardedNode> {
  const { config } = options;
  const shards = config.node.shards;
  const name = options.name ?? config.node.name ?? `${hostname()}-${process.pid}`;
  const log = options.log ?? createLogger(name);
  const concurrency = options.concurrency ?? config.node.concurrency;
  const nc = await connectNode(config, { ...options, name, log });
  // Shared by this node's shards only (two nodes in one process must not hear each other).
  const signalsChannel = `prism-signals-${randomUUID()}`;
  // The node's bounds are the node's: each shard gets its share.
  const shardConfig: PrismConfig = {
    ...config,
    node: {
      ...config.node,
      maxBodyBytesHeld: Math.max(1, Math.ceil(config.node.maxBodyBytesHeld / shards)),
    },
  };
  const setupOf = (index: number): ShardSetup => ({
    config: shardConfig,
    natsUrl: options.natsUrl,
    natsSecurity: options.natsSecurity,
    storage: options.storage,
    name,
    index,
    shards,
    concurrency: Math.max(1, Math.ceil(concurrency / shards)),
    signalsChannel,
    logLevel: log.level,
  });
  let draining = false;
  /** Every shard was up once: from then on one that stops is started again. */
  let started = false;
  let nextTicket = 0;

  const post = (shard: Shard, message: ToShard): void => shard.worker?.postMessage(message);
  const flush = (shard: Shard): void => {
    if (!shard.ready || shard.tickets.length === 0) return;
    post(shard, { type: 'jobs', tickets: shard.tickets, records: shard.records });
    shard.tickets = [];
    shard.records = [];
  };

  const start = (shard: Shard): Promise<void> => {
    const worker = new Worker(new URL('./shard-worker.ts', import.meta.url), {
      workerData: setupOf(shard.index),
    });
    shard.worker = worker;
    shard.ready = false;
    let resolveReady: () => void;
    let rejectReady: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    worker.on('message', (message: FromShard) => {
      switch (message.type) {
        case 'ready':
          shard.ready = true;
          shard.crashes = 0;
          flush(shard);
          resolveReady();
          break;
        case 'settled':
          for (const ticket of message.tickets) {
            shard.held.get(ticket)?.forget();
            shard.held.delete(ticket);
          }
          break;
        case 'lost':
          log.error({ shard: shard.index, reason: message.reason }, 'shard lost its NATS connection');
          break;
      }
    });
    worker.on('error', (error) => {
      log.error({ err: error, shard: shard.index }, 'shard crashed');
      // While starting, this is why the node cannot start (a storage URL it cannot open, …).
      rejectReady(error);
    });
    shard.exited = new Promise((resolve) =>
      worker.once('exit', (code) => {
        shard.worker = undefined;
        shard.ready = false;
        rejectReady(new Error(`shard ${shard.index} exited (${code}) while starting`));
        // Whatever it held goes back to JetStream now rather than after ack_wait. (With the
        // in-memory ledger its windows are gone with it, as a node's are when it restarts.)
        for (const message of shard.held.values()) message.nak(0);
        shard.held.clear();
        // Jobs not posted to it yet were among those: JetStream brings them again.
        shard.tickets = [];
        shard.records = [];
        if (started && !draining) {
          shard.crashes++;
          const delay = backoffDelay(shard.crashes, 500, 30_000);
          log.error(
            { shard: shard.index, code, restartInMs: Math.round(delay) },
            'shard stopped; restarting',
          );
          setTimeout(() => {
            if (draining) return;
            shard.restarts++;
            void start(shard).catch(() => undefined);
          }, delay).unref();
        }
        resolve();
      }),
    );
    return ready;
  };

  const slots: Shard[] = Array.from({ length: shards }, (_, index) => ({
    index,
    worker: undefined,
    ready: false,
    held: new Map(),
    tickets: [],
    records: [],
    crashes: 0,
    restarts: 0,
    exited: Promise.resolve(),
  }));
  try {
    await Promise.all(slots.map(start));
    started = true;
  } catch (error) {
    draining = true;
    await Promise.all(slots.map((shard) => shard.worker?.terminate()));
    await nc.close();
    throw error;
  }

  let flushScheduled = false;
  const flushAll = (): void => {
    flushScheduled = false;
    for (const shard of slots) flush(shard);
  };
  const route = (message: JobMessage): void => {
    const held = message as NatsJobMessage;
    const shard = slots[shardOf(held.subject, config, shards)] as Shard;
    const ticket = ++nextTicket;
    shard.held.set(ticket, held);
    shard.tickets.push(ticket);
    shard.records.push(held.record());
    // One message per shard per turn: a pull of 256 jobs costs a few posts, not 256.
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  };
  const source = new JobSource(nc, jetstream(nc), {
    maxHeld: config.node.maxParked,
    batch: 256,
    ackWaitMs: config.node.ackWait,
    deliver: route,
    log,
  });
  source.start();
  const shardNames = slots.map((shard) => `${name}#${shard.index}`);
  log.info({ nats: options.natsUrl, shards: shardNames, concurrency }, 'sharded node started');

  let drained: Promise<void> | undefined;
  const connectionLost = closedForGood(nc, log, () => drained !== undefined);
  const drain = (): Promise<void> =>
    (drained ??= (async () => {
      draining = true;
      log.info({ held: source.heldCount }, 'draining: no more pulls; each shard hands its jobs back');
      await source.stopPulling();
      flushAll();
      for (const shard of slots) post(shard, { type: 'drain' });
      // Each shard drains within drainTimeout; one that does not is stopped.
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(slots.map((shard) => shard.exited)),
        new Promise((resolve) => (giveUp = setTimeout(resolve, config.node.drainTimeout + 5_000))),
      ]);
      clearTimeout(giveUp);
      await Promise.all(slots.map((shard) => shard.worker?.terminate()));
      for (const message of source.heldMessages()) message.nak(0);
      source.close();
      log.info('sharded node stopped');
      await nc.drain().catch(() => undefined);
      log.flush?.();
    })());

  const shardsNow = (): ReturnType<ShardedNode['shards']> =>
    slots.map((shard) => ({
      name: shardNames[shard.index] as string,
      running: shard.ready,
      restarts: shard.restarts,
      held: shard.held.size,
    }));
  const terminateShard = async (index: number): Promise<void> => {
    const shard = slots[index];
    if (shard === undefined) throw new RangeError(`no shard ${index} (the node has ${shards})`);
    await shard.worker?.terminate();
    await shard.exited;
  };
  return { name, shardNames, drain, connectionLost, shards: shardsNow, terminateShard };
}
