import { hostname } from 'node:os';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { SETTLING_PER_COLLECTOR, spawnCollector } from './actors/collector.ts';
import { spawnCollectorPool } from './actors/collector-pool.ts';
import { Settling } from './collect/settling.ts';
import { spawnMetrics } from './actors/metrics.ts';
import {
  spawnSupervisor,
  startActorSystem,
  stopActor,
  stopActorSystem,
  tell,
  type ParentRef,
} from './actors/nact-typed.ts';
import type { CollectorRef } from './actors/refs.ts';
import { spawnRouter } from './actors/router.ts';
import { preciseNow, type NodeServices } from './actors/services.ts';
import { ThrottleRegistry } from './actors/throttle-registry.ts';
import { KvAttemptLog, type AttemptLog } from './bus/attempt-log.ts';
import type { JobMessage } from './bus/job-message.ts';
import { JobSource, type JobIntake } from './bus/job-source.ts';
import { KvCheckpointStore } from './bus/checkpoints.ts';
import { closedForGood, connectNats, watchConnection, type NatsSecurity } from './bus/nats-connection.ts';
import { JetStreamPublisher } from './bus/publisher.ts';
import { defaultStreamSettings, ensureStreams } from './bus/streams.ts';
import { CredentialStore } from './config/credentials.ts';
import { ConfigError } from './config/load.ts';
import type { PrismConfig } from './config/schema.ts';
import { BodyBudget } from './http/body-budget.ts';
import { localAddressProblem, UndiciHttpClient, type HttpClient } from './http/http-client.ts';
import type { RateLedger } from './limits/ledger.ts';
import { MemoryLedger } from './limits/memory-ledger.ts';
import { KvLedger } from './limits/kv-ledger.ts';
import { CONTROL_PREFIX } from './messages/subject.ts';
import { createLogger } from './runtime/logger.ts';
import { NodeStats } from './runtime/node-stats.ts';
import { Scheduler } from './runtime/scheduler.ts';
import { takeSnapshot, type NodeSnapshot } from './runtime/snapshot.ts';
import { openStorage } from './storage/open-storage.ts';
import type { ObjectStorage } from './storage/storage.ts';

export interface NodeOptions {
  config: PrismConfig;
  natsUrl: string;
  /** NATS credentials and TLS (names of env vars and files); default: config.nats. */
  natsSecurity?: NatsSecurity;
  /** `file:./data`, `s3://bucket/prefix`, or a ready storage. */
  storage: string | ObjectStorage;
  name?: string;
  /** Requests in flight on this node; overrides config.node.concurrency. */
  concurrency?: number;
  log?: Logger;
  ledger?: RateLedger;
  http?: HttpClient;
  env?: NodeJS.ProcessEnv;
  /**
   * Where jobs come from, instead of pulling them from JetStream itself: a shard of a sharded node
   * gets them from the node's intake (src/runtime/sharded-node.ts).
   */
  intake?: (deliver: (message: JobMessage) => void, nc: NatsConnection) => JobIntake;
  /** The name this node answers `prism status` with (a shard's: `<node>#<index>`); default `name`. */
  statusName?: string;
}

export interface PrismNode {
  readonly name: string;
  readonly services: NodeServices;
  snapshot(): NodeSnapshot;
  /** Stops pulling, hands parked jobs back, lets in-flight calls finish (up to drainTimeout), closes. */
  drain(): Promise<void>;
  /**
   * Settles if the NATS connection closes for good while the node is not draining (the server
   * revoked its credentials): the node can do nothing more, and its jobs go to other nodes after
   * ack_wait. `prism node` exits non-zero on it so that its supervisor restarts it.
   */
  readonly connectionLost: Promise<Error>;
}

export const STATUS_SUBJECT = `${CONTROL_PREFIX}.status`;

/**
 * Wires one node: NATS (jobs in, results and dead letters out), the actor tree
 * `router`, `throttles ▶ throttle-<n>…`, `collector-pool`, `collectors ▶ collector-<i>…`,
 * `metrics`, and the storage. Throttles and collectors hang under silent supervisors because
 * nact copies a parent's children map on every message the parent handles.
 */
export async function startNode(options: NodeOptions): Promise<PrismNode> {
  const { config } = options;
  const name = options.name ?? config.node.name ?? `${hostname()}-${process.pid}`;
  const log = options.log ?? createLogger(name);
  const credentials = new CredentialStore(config, options.env);
  const storage = typeof options.storage === 'string' ? openStorage(options.storage) : options.storage;
  const concurrency = options.concurrency ?? config.node.concurrency;

  const egress = config.node.egressAddress;
  const egressProblem = egress !== undefined ? await localAddressProblem(egress) : undefined;
  if (egressProblem !== undefined) throw new ConfigError(`node.egressAddress ${egressProblem}`);
  const nc = await connectNode(config, { ...options, name, log });
  const js = jetstream(nc);
  const attempts: AttemptLog = await KvAttemptLog.open(nc);
  const bodies = new BodyBudget(config.node.maxBodyBytesHeld);
  const http = options.http ?? new UndiciHttpClient({ localAddress: config.node.egressAddress, bodies });
  const stats = new NodeStats();
  stats.collectors = concurrency;
  const scheduler = new Scheduler(preciseNow);
  const ledgerOptions = ledgerOptionsFor(config);
  const services: NodeServices = {
    config,
    nodeName: name,
    log,
    ledger:
      options.ledger ??
      (config.node.ledger === 'memory'
        ? new MemoryLedger(ledgerOptions)
        : await KvLedger.open(nc, { ...ledgerOptions, log })),
    scheduler,
    http,
    storage,
    publisher: new JetStreamPublisher(js),
    attempts,
    checkpoints: await KvCheckpointStore.open(nc),
    credentials,
    stats,
    now: preciseNow,
  };

  const system = startActorSystem(`prism-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`);
  const throttleSupervisor: ParentRef = spawnSupervisor(system, 'throttles', (error) =>
    log.error({ err: error }, 'throttles: a throttle actor was stopped after repeated crashes'),
  );
  // A collector stopped after repeated crashes is replaced by a new one (with no crash history):
  // else every collector of a node hit by a bug in one API's answers would be gone within
  // minutes, and the node would go on taking jobs from JetStream that no one calls.
  const collectorSupervisor: ParentRef = spawnSupervisor(system, 'collectors', (error, stopped) => {
    const index = collectors.findIndex((ref) => ref === stopped);
    log.error(
      { err: error },
      'collectors: a collector was stopped after repeated crashes; a new one takes its place',
    );
    if (index >= 0) collectors[index] = newCollector(`collector-${index}-${++replaced}`);
  });
  const poison = new Map<string, number>();
  const settling = new Settling(concurrency * SETTLING_PER_COLLECTOR);
  const pool = spawnCollectorPool(system, services);
  const throttles = new ThrottleRegistry(throttleSupervisor, services, pool);
  const router = spawnRouter(system, {
    services,
    spawnThrottle: throttles.spawn,
    directory: throttles.directory,
  });
  throttles.router = router;
  const newCollector = (name: string): CollectorRef =>
    spawnCollector(collectorSupervisor, name, {
      services,
      pool,
      router,
      isLive: (ref) => throttles.has(ref),
      poison,
      settling,
    });
  const collectors: CollectorRef[] = [];
  let replaced = 0;
  for (let i = 0; i < concurrency; i++) collectors.push(newCollector(`collector-${i}`));

  const deliver = (message: JobMessage): void => tell(router, { type: 'job', message });
  const source: JobIntake =
    options.intake?.(deliver, nc) ??
    new JobSource(nc, js, {
      maxHeld: config.node.maxParked,
      batch: 256,
      ackWaitMs: config.node.ackWait,
      deliver,
      log,
    });
  const snapshot = (): NodeSnapshot =>
    takeSnapshot(options.statusName ?? name, stats, {
      held: source.heldCount,
      settling: settling.size,
      inFlightRequests: http.inFlight,
      bodies: options.http === undefined ? bodies : undefined,
      ledger: services.ledger.traffic?.(),
    });
  const metrics = spawnMetrics(system, services, snapshot);
  const metricsTimer = setInterval(() => tell(metrics, { type: 'tick' }), config.node.metricsInterval);
  metricsTimer.unref();
  // The in-memory ledger forgets keys no limit window still needs (the KV ledger has a TTL).
  const { ledger } = services;
  const sweepTimer = setInterval(() => {
    if (ledger instanceof MemoryLedger) ledger.sweep(preciseNow());
  }, 60_000);
  sweepTimer.unref();
  const statusSub: Subscription = nc.subscribe(STATUS_SUBJECT, {
    callback: (_error, msg) => {
      try {
        msg.respond(JSON.stringify(snapshot()));
      } catch (error) {
        log.warn({ err: error }, 'answering a status request failed');
      }
    },
  });
  source.start();
  log.info(
    { storage: storage.location, nats: options.natsUrl, concurrency, sources: Object.keys(config.sources) },
    'node started',
  );

  let drained: Promise<void> | undefined;
  const connectionLost = closedForGood(nc, log, () => drained !== undefined);
  const drain = (): Promise<void> =>
    (drained ??= (async () => {
      log.info({ held: source.heldCount }, 'draining: no more pulls, parked jobs go back to JetStream');
      await source.stopPulling();
      for (const ref of throttles.refs()) tell(ref, { type: 'release-parked' });
      const deadline = Date.now() + config.node.drainTimeout;
      while (source.heldCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Whatever is still held after the deadline goes back too: another node finishes it.
      for (const message of source.heldMessages()) message.nak(0);
      // A settled job may still be clearing its checkpoint: let it, within the deadline.
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([
        settling.idle(),
        new Promise((r) => (giveUp = setTimeout(r, Math.max(0, deadline - Date.now())))),
      ]);
      // Not left armed: it would keep a drained process alive until the deadline.
      clearTimeout(giveUp);
      source.close();
      clearInterval(metricsTimer);
      clearInterval(sweepTimer);
      statusSub.unsubscribe();
      scheduler.stop();
      for (const ref of throttles.refs()) stopActor(ref);
      for (const ref of collectors) stopActor(ref);
      stopActorSystem(system);
      log.info({ snapshot: snapshot() }, 'node stopped');
      await nc.drain().catch(() => undefined);
      await Promise.allSettled([http.close(), storage.close(), services.ledger.close()]);
      log.flush?.();
    })());

  return { name, services, snapshot, drain, connectionLost };
}

/**
 * A node's NATS connection (its disconnects logged), with the streams and the shared consumer
 * made or checked as the node's config sets them.
 */
export async function connectNode(
  config: PrismConfig,
  options: {
    natsUrl: string;
    natsSecurity?: NatsSecurity;
    env?: NodeJS.ProcessEnv;
    name: string;
    log: Logger;
  },
): Promise<NatsConnection> {
  const nc = await connectNats({
    url: options.natsUrl,
    name: `prism-${options.name}`,
    security: options.natsSecurity ?? config.nats,
    env: options.env,
    log: options.log,
  });
  watchConnection(nc, options.log);
  await ensureStreams(nc, {
    ...defaultStreamSettings,
    ackWaitMs: config.node.ackWait,
    maxAckPending: config.node.maxAckPending,
  });
  return nc;
}

/** The ledger's settings from the node's config (a sharded node's shards build their own ledgers). */
export function ledgerOptionsFor(config: PrismConfig) {
  return {
    marginMs: config.node.limitMargin,
    // A call holds its place under a concurrency cap for at most requestTimeout (undici aborts
    // it then); a place outlives that only when its node died before giving it back.
    leaseMs: config.node.requestTimeout + config.node.limitMargin + 1_000,
    sendAllowanceMs: config.node.sendAllowance,
  };
}
