import type { BodyBudget } from '../http/body-budget.ts';
import type { LedgerTraffic } from '../limits/ledger.ts';
import type { KeyStatus, NodeStats } from './node-stats.ts';

/** The node's figures as logged every interval and answered to `prism status`. */
export interface NodeSnapshot {
  node: string;
  at: string;
  uptimeSeconds: number;
  jobs: {
    received: number;
    done: number;
    deadLettered: number;
    retried: number;
    spilled: number;
    held: number;
    /** Calls done, leaving the node (result, ack; see Settling): part of `held`. */
    settling: number;
  };
  throttles: { alive: number; spawned: number; passivated: number; parked: number; pausedKeys: number };
  collectors: {
    total: number;
    busy: number;
    idle: number;
    callsWaiting: number;
    inFlightRequests: number;
    /** How long a collector was busy per call (see NodeStats.collectorTurn). */
    turnMs: ReturnType<NodeStats['collectorTurn']['percentiles']>;
    /**
     * Response bytes held (read, not yet stored) against node.maxBodyBytesHeld, the most held
     * since start, and how often a call stopped reading to wait for room (see BodyBudget).
     */
    bodies?: { heldBytes: number; peakBytes: number; limitBytes: number; waits: number; waiting: number };
  };
  calls: {
    total: number;
    failures: number;
    throttleSignals: number;
    lapsedSlots: number;
    ledgerErrors: number;
    perSecond: number;
    latencyMs: ReturnType<NodeStats['latency']['percentiles']>;
    /** From a call's grant to when it left (see NodeStats.sendLag). */
    sendLagMs: ReturnType<NodeStats['sendLag']['percentiles']>;
  };
  storage: { pages: number; bytes: number; retries: number };
  restarts: number;
  /** The shared ledger's KV round trips since start (absent with the in-memory ledger). */
  ledger?: LedgerTraffic;
  /** How late the node's event loop ran, since it started (see NodeStats.loopDelayMs). */
  eventLoopDelayMs: ReturnType<NodeStats['loopDelayMs']>;
  /** The keys that wait longest, with what they wait for. */
  mostDelayed: Array<{ key: string; parked: number; waitsMs: number; reason: string }>;
  /** The keys with the most parked jobs. */
  topParked: Array<{ key: string; parked: number }>;
  /**
   * The paused keys that stay paused longest, also when their jobs went back to JetStream (a
   * spent daily quota): which signal paused them and until when.
   */
  paused: Array<{ key: string; until: string; waitsMs: number; reason: string; parked: number }>;
}

export function takeSnapshot(
  node: string,
  stats: NodeStats,
  live: {
    held: number;
    settling?: number;
    inFlightRequests: number;
    bodies?: BodyBudget;
    ledger?: LedgerTraffic | undefined;
  },
  now = Date.now(),
  top = 10,
): NodeSnapshot {
  let parked = 0;
  let pausedKeys = 0;
  const waiting: KeyStatus[] = [];
  const pausedList: KeyStatus[] = [];
  for (const status of stats.keys.values()) {
    parked += status.parked;
    if (status.pausedUntil !== undefined && status.pausedUntil > now) {
      pausedKeys++;
      pausedList.push(status);
    }
    if (status.parked > 0 && status.waitUntil !== undefined) waiting.push(status);
  }
  const mostDelayed = topN(waiting, top, (s) => s.waitUntil as number).map((s) => ({
    key: s.key,
    parked: s.parked,
    waitsMs: Math.max(0, Math.round((s.waitUntil as number) - now)),
    reason: s.waitReason ?? 'unknown',
  }));
  const topParked = topN(
    [...stats.keys.values()].filter((s) => s.parked > 0),
    top,
    (s) => s.parked,
  ).map((s) => ({
    key: s.key,
    parked: s.parked,
  }));
  const paused = topN(pausedList, top, (s) => s.pausedUntil as number).map((s) => ({
    key: s.key,
    until: new Date(s.pausedUntil as number).toISOString(),
    waitsMs: Math.round((s.pausedUntil as number) - now),
    reason: s.pauseReason ?? 'unknown',
    parked: s.parked,
  }));
  return {
    node,
    at: new Date(now).toISOString(),
    uptimeSeconds: Math.round((now - stats.startedAt) / 1000),
    jobs: {
      received: stats.jobsReceived,
      done: stats.jobsDone,
      deadLettered: stats.jobsDeadLettered,
      retried: stats.jobsRetried,
      spilled: stats.jobsSpilled,
      held: live.held,
      settling: live.settling ?? 0,
    },
    throttles: {
      alive: stats.keys.size,
      spawned: stats.throttlesSpawned,
      passivated: stats.throttlesPassivated,
      parked,
      pausedKeys,
    },
    collectors: {
      total: stats.collectors,
      busy: stats.collectorsBusy,
      idle: stats.collectors - stats.collectorsBusy,
      callsWaiting: stats.callsWaiting,
      inFlightRequests: live.inFlightRequests,
      turnMs: stats.collectorTurn.percentiles(),
      ...(live.bodies !== undefined
        ? {
            bodies: {
              heldBytes: live.bodies.held,
              peakBytes: live.bodies.peak,
              limitBytes: live.bodies.maxBytes,
              waits: live.bodies.waits,
              waiting: live.bodies.waitingCount,
            },
          }
        : {}),
    },
    calls: {
      total: stats.calls,
      failures: stats.callFailures,
      throttleSignals: stats.throttleSignals,
      lapsedSlots: stats.lapsedSlots,
      ledgerErrors: stats.ledgerErrors,
      perSecond: stats.takeDispatchRate(now),
      latencyMs: stats.latency.percentiles(),
      sendLagMs: stats.sendLag.percentiles(),
    },
    storage: { pages: stats.pagesStored, bytes: stats.bytesStored, retries: stats.storageRetries },
    restarts: stats.actorRestarts,
    eventLoopDelayMs: stats.loopDelayMs(),
    ...(live.ledger !== undefined ? { ledger: live.ledger } : {}),
    mostDelayed,
    topParked,
    paused,
  };
}

/** The n items with the largest score, without sorting 100,000 keys. */
function topN<T>(items: T[], n: number, score: (item: T) => number): T[] {
  const best: T[] = [];
  for (const item of items) {
    if (best.length < n) {
      best.push(item);
      best.sort((a, b) => score(b) - score(a));
    } else if (score(item) > score(best[n - 1] as T)) {
      best[n - 1] = item;
      best.sort((a, b) => score(b) - score(a));
    }
  }
  return best;
}
