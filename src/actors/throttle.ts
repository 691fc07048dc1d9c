import Denque from 'denque';
import type { CollectorPoolRef, RouterRef, ThrottleRef } from './refs.ts';
import { spawnActor, stopActor, tell, type ActorContext, type ParentRef } from './nact-typed.ts';
import type { NodeServices } from './services.ts';
import type { ThrottleMessage } from '../messages/throttle-messages.ts';
import type { Work } from '../messages/work.ts';
import type { LimitCheck } from '../limits/ledger.ts';
import type { KeyStatus } from '../runtime/node-stats.ts';

/**
 * One per key `<source>.<api>.<account>`: parks the key's jobs in its own deque and lets one go
 * whenever the ledger has a slot in every limit that applies, up to the key's concurrency. It
 * never holds the only copy of a job: each parked job is still unacked in JetStream.
 */
/** The smallest average spacing the limits allow (window / limit), 0 without limits. */
const paceMs = (checks: readonly LimitCheck[]): number =>
  checks.reduce((pace, c) => Math.max(pace, (c.windowMs * c.weight) / c.limit), 0);

/** How soon a key tries again when the ledger (NATS KV) did not answer. */
const LEDGER_RETRY_MS = 1_000;

/** A pause longer than this hands the key's parked jobs back to JetStream until it ends. */
const LONG_PAUSE_MS = 60_000;

interface ThrottleState {
  parked: Denque<Work>;
  inFlight: number;
  /** The earliest wake-up already asked of the scheduler. */
  wakeAt: number;
  idleSince: number;
  /** Jobs received from the router (it compares before letting this actor stop). */
  received: number;
  /** The node drains: no new calls start; jobs go back to JetStream for other nodes. */
  draining: boolean;
  status: KeyStatus;
}

export interface ThrottleDeps {
  key: string;
  concurrency: number;
  services: NodeServices;
  pool: CollectorPoolRef;
  router: RouterRef;
  onStopped: (ref: ThrottleRef, leftovers: Work[]) => void;
}

export function spawnThrottle(parent: ParentRef, name: string, deps: ThrottleDeps): ThrottleRef {
  const { services, key } = deps;
  const { stats, ledger, scheduler, config } = services;

  const wakeAt = (state: ThrottleState, ctx: ActorContext<ThrottleMessage>, at: number): void => {
    if (at >= state.wakeAt) return;
    state.wakeAt = at;
    scheduler.at(at, () => tell(ctx.self, { type: 'wake' }));
  };

  const pump = async (state: ThrottleState, ctx: ActorContext<ThrottleMessage>): Promise<void> => {
    const { status } = state;
    while (state.parked.length > 0 && state.inFlight < deps.concurrency) {
      const head = state.parked.peekFront() as Work;
      if (head.message.settled) {
        // Handed back to JetStream already (after a crash): a redelivery will bring it again.
        state.parked.shift();
        continue;
      }
      const now = services.now();
      for (const pauseKey of head.pauseKeys) {
        const pause = ledger.pausedUntil(pauseKey, now);
        if (pause !== undefined) {
          status.pausedUntil = pause.until;
          status.pauseReason = pause.reason;
          if (pause.until - now > LONG_PAUSE_MS) spill(state, pause.until - now);
          wait(state, ctx, pause.until, `paused: ${pause.reason}`);
          return;
        }
      }
      status.pausedUntil = undefined;
      status.pauseReason = undefined;
      const checks = withSlowdowns(head);
      let slot;
      try {
        slot = await ledger.reserve(checks, now);
      } catch (error) {
        // The ledger is in NATS, which may be restarting: no call without a slot; try again soon.
        // Counted for the metrics line (one warning per key would be 100,000 lines).
        stats.ledgerErrors++;
        services.log.debug({ err: error, key }, 'ledger unavailable; the key waits');
        wait(state, ctx, now + LEDGER_RETRY_MS, `ledger unavailable: ${(error as Error).message}`);
        return;
      }
      if (!slot.granted) {
        if (slot.retryAt - now > LONG_PAUSE_MS) spill(state, slot.retryAt - now);
        wait(state, ctx, slot.retryAt, slot.reason);
        return;
      }
      state.parked.shift();
      head.reservation = slot.id;
      head.reservedChecks = checks;
      head.reservedAt = slot.at;
      state.inFlight++;
      tell(deps.pool, { type: 'call', work: head, replyTo: ctx.self });
    }
    status.waitUntil = undefined;
    status.waitReason = state.parked.length > 0 ? `concurrency ${deps.concurrency}` : undefined;
    syncCounts(state);
    if (state.parked.length === 0 && state.inFlight === 0) {
      state.idleSince = services.now();
      wakeAt(state, ctx, state.idleSince + config.node.passivateAfter);
    }
  };

  /** A slowed scope adds a limit of one call per interval, kept in the ledger like any other. */
  const withSlowdowns = (work: Work): LimitCheck[] => {
    let checks = work.checks;
    for (const pauseKey of work.pauseKeys) {
      const slowdown = ledger.slowedBy(pauseKey, services.now());
      if (slowdown === undefined) continue;
      if (checks === work.checks) checks = [...work.checks];
      checks.push({
        key: `slow|${pauseKey}|${slowdown.intervalMs}`,
        limit: 1,
        windowMs: slowdown.intervalMs,
        reset: 'rolling',
        weight: 1,
      });
    }
    return checks;
  };

  /** Waiting for long (a daily quota spent, a long pause): the jobs wait in JetStream, not in memory. */
  const spill = (state: ThrottleState, delayMs: number): void => {
    for (let work = state.parked.shift(); work !== undefined; work = state.parked.shift()) {
      work.message.nak(delayMs + Math.random() * 1_000);
      stats.jobsSpilled++;
    }
  };

  const wait = (
    state: ThrottleState,
    ctx: ActorContext<ThrottleMessage>,
    until: number,
    reason: string,
  ): void => {
    state.status.waitUntil = until;
    state.status.waitReason = reason;
    syncCounts(state);
    wakeAt(state, ctx, until);
  };

  const syncCounts = (state: ThrottleState): void => {
    state.status.parked = state.parked.length;
    state.status.inFlight = state.inFlight;
  };

  const receive = async (
    state: ThrottleState,
    message: ThrottleMessage,
    ctx: ActorContext<ThrottleMessage>,
  ): Promise<ThrottleState> => {
    switch (message.type) {
      case 'enqueue': {
        state.received++;
        if (state.draining) {
          message.work.message.nak(0);
          return state;
        }
        if (state.parked.length >= config.node.maxParkedPerKey) {
          // Bounded memory: the key holds enough; the job waits in JetStream until about when its
          // turn would come (the parked jobs ahead of it, at the key's strictest pace).
          const delay = Math.max(1_000, state.parked.length * paceMs(message.work.checks));
          message.work.message.nak(delay);
          stats.jobsSpilled++;
          return state;
        }
        state.parked.push(message.work);
        break;
      }
      case 'next-page':
      case 'requeue':
        state.inFlight--;
        if (state.draining) message.work.message.nak(0);
        else state.parked.unshift(message.work);
        break;
      case 'throttled':
        state.inFlight--;
        stats.throttleSignals++;
        // The pause holds on this node even when NATS cannot spread it (the ledger keeps it in
        // memory first), so a failure to spread it is not worth a crash.
        await ledger
          .pause(message.scope, message.until, message.reason)
          .catch((error: unknown) =>
            services.log.warn({ err: error, key }, 'ledger unavailable: the pause holds on this node only'),
          );
        if (state.draining) message.work.message.nak(0);
        else state.parked.unshift(message.work);
        break;
      case 'call-ended':
        state.inFlight--;
        break;
      case 'wake':
        if (services.now() >= state.wakeAt) state.wakeAt = Number.POSITIVE_INFINITY;
        if (
          state.parked.length === 0 &&
          state.inFlight === 0 &&
          services.now() - state.idleSince >= config.node.passivateAfter
        ) {
          tell(deps.router, { type: 'throttle-idle', key, ref: ctx.self, received: state.received });
          return state;
        }
        break;
      case 'retire':
        stopActor(ctx.self);
        return state;
      case 'release-parked':
        state.draining = true;
        for (let work = state.parked.shift(); work !== undefined; work = state.parked.shift())
          work.message.nak(0);
        syncCounts(state);
        return state;
    }
    await pump(state, ctx);
    return state;
  };

  const status: KeyStatus = {
    key,
    parked: 0,
    inFlight: 0,
    waitUntil: undefined,
    waitReason: undefined,
    pausedUntil: undefined,
    pauseReason: undefined,
  };
  const self: ThrottleRef = spawnActor<ThrottleState, ThrottleMessage>(parent, {
    name,
    initialState: () => ({
      parked: new Denque<Work>(),
      inFlight: 0,
      wakeAt: Number.POSITIVE_INFINITY,
      idleSince: services.now(),
      received: 0,
      draining: false,
      status,
    }),
    receive,
    supervision: {
      // Resume keeps the parked jobs; only the message that crashed is lost, and it is handled below.
      restart: 'resume',
      backoffBaseMs: 10,
      backoffMaxMs: 5_000,
      maxCrashes: 10,
      windowMs: 60_000,
      onCrash: ({ message, error, crashes }) => {
        stats.actorRestarts++;
        services.log.error({ err: error, key, crashes, message: message?.type }, 'throttle actor crashed');
        // A job in the dropped message goes back to JetStream (never dropped silently).
        if (message !== undefined && 'work' in message) message.work.message.nak(1_000);
        // The dropped message may have been the wake-up the parked jobs wait for: send another.
        setTimeout(() => tell(self, { type: 'wake' }), 1_000).unref();
      },
    },
    afterStop: (state) => {
      stats.keys.delete(key);
      deps.onStopped(self, state.parked.toArray());
    },
  });
  stats.keys.set(key, status);
  stats.throttlesSpawned++;
  return self;
}
