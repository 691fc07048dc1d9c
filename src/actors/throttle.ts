import type { CollectorPoolRef, RouterRef, ThrottleRef } from './refs.ts';
import { defineActor, stopActor, tell, type ParentRef } from './nact-typed.ts';
import type { NodeServices } from './services.ts';
import type { ThrottleMessage } from '../messages/throttle-messages.ts';
import type { Work } from '../messages/work.ts';
import { paceMs, slowdownCheck, type LimitCheck, type Reservation } from '../limits/ledger.ts';
import { describeLimit } from '../limits/memory-ledger.ts';
import { pauseKeysFor, templateVars } from '../limits/limit-keys.ts';
import type { KeyStatus } from '../runtime/node-stats.ts';

/**
 * The throttle actor, one per key `<source>.<api>.<account>`: parks the key's jobs in its own
 * deque and lets one go whenever the ledger has a slot in every limit that applies, up to the
 * key's concurrency. It never holds the only copy of a job: each parked job is still unacked in
 * JetStream.
 *
 * Holds: a `KeyThrottle` (below). Receives: `ThrottleMessage` (jobs from the router, replies
 * from collectors, wake-ups from the scheduler). Sends: `call` to the collector pool,
 * `throttle-idle` to the router; naks jobs back to JetStream when it holds too many or waits long.
 *
 * Every key's actor runs the same behaviour (`throttleKind`, defined once per node): an idle key
 * costs its state and nact's actor, not a set of closures of its own.
 */

/** How soon a key tries again when the ledger (NATS KV) did not answer. */
const LEDGER_RETRY_MS = 1_000;

/** A pause longer than this hands the key's parked jobs back to JetStream until it ends. */
const LONG_PAUSE_MS = 60_000;

const WAKE: ThrottleMessage = Object.freeze({ type: 'wake' });

/**
 * What one key's throttle actor holds. It is also the key's status in `NodeStats.keys` (read by
 * the metrics line and `prism status`), so a status request costs no message to 100,000 actors.
 */
export class KeyThrottle implements KeyStatus {
  readonly key: string;
  readonly concurrency: number;
  /**
   * Jobs waiting for a slot, first in line first, linked through `Work.nextInLine`: a key holds
   * two fields, not a deque and its array (~110 B and two objects per busy key, each marked by
   * every full collection at 100,000 keys).
   */
  firstInLine: Work | undefined = undefined;
  private lastInLine: Work | undefined = undefined;
  private inLine = 0;
  inFlight = 0;
  /** The earliest wake-up already asked of the scheduler. */
  wakeAt = Number.POSITIVE_INFINITY;
  /**
   * The ledger will not grant `notBeforeChecks` before this time (its last refusal's retryAt):
   * a job that arrives meanwhile need not ask. Only ever a lower bound, so it can delay a call,
   * never let one through: the ledger decides every call.
   */
  notBefore = 0;
  notBeforeChecks: readonly LimitCheck[] | undefined = undefined;
  /**
   * The check objects the key's parked jobs share. The router works out each job's checks anew,
   * equal but not the same objects; a job that arrives with equal checks takes these, so the
   * ledger finds the key's windows through them (LimitCheck.ledgerMemo) rather than a map of
   * every key. Dropped when the key goes idle, like the rest of its last job.
   */
  keyChecks: LimitCheck[] | undefined = undefined;
  notBeforeWhy: WaitReason = undefined;
  idleSince: number;
  /** Jobs received from the router (it compares before letting this actor stop). */
  received = 0;
  /** The node drains: no new calls start; jobs go back to JetStream for other nodes. */
  draining = false;
  /**
   * When the key may call again (NaN: it need not wait), and why it waits (see WaitReason). A
   * number field that is only ever a number keeps its value in place; one that is sometimes
   * `undefined` gets a new heap number for every value, which lived as long as the key's wait
   * and was promoted to the old generation (bench/throttle).
   */
  private waitUntilAt = Number.NaN;
  waitWhy: WaitReason = undefined;
  pausedUntil: number | undefined = undefined;
  pauseReason: string | undefined = undefined;

  constructor(key: string, concurrency: number, now: number) {
    this.key = key;
    this.concurrency = concurrency;
    this.idleSince = now;
  }

  get waitUntil(): number | undefined {
    return Number.isNaN(this.waitUntilAt) ? undefined : this.waitUntilAt;
  }

  get parked(): number {
    return this.inLine;
  }

  get waitReason(): string | undefined {
    if (this.waitUntil === undefined) return this.parked > 0 ? `concurrency ${this.concurrency}` : undefined;
    return typeof this.waitWhy === 'object' ? describeLimit(this.waitWhy) : this.waitWhy;
  }

  park(work: Work, first: boolean): void {
    this.inLine++;
    if (this.lastInLine === undefined) {
      work.nextInLine = undefined;
      this.firstInLine = this.lastInLine = work;
    } else if (first) {
      work.nextInLine = this.firstInLine;
      this.firstInLine = work;
    } else {
      work.nextInLine = undefined;
      this.lastInLine.nextInLine = work;
      this.lastInLine = work;
    }
  }

  /** Takes the first job out of the line (it must have one). */
  unparkFirst(): Work {
    const work = this.firstInLine as Work;
    this.firstInLine = work.nextInLine;
    if (this.firstInLine === undefined) this.lastInLine = undefined;
    work.nextInLine = undefined;
    this.inLine--;
    return work;
  }

  /** Takes every parked job out (to hand back to JetStream or to the router). */
  takeParked(): Work[] {
    const works: Work[] = [];
    while (this.firstInLine !== undefined) works.push(this.unparkFirst());
    return works;
  }

  waitFor(until: number | undefined, why: WaitReason): void {
    this.waitUntilAt = until ?? Number.NaN;
    this.waitWhy = why;
  }
}

/**
 * The messages a key's call and its next job travel in, as class instances rather than object
 * literals: V8 may decide to allocate every object of a literal in the old generation when most
 * of them outlived a young-generation collection ("pretenuring"), as these do while 100,000 keys
 * arrive at once and mailboxes fill. They were then old-generation garbage from every call on
 * (~0.1 KB a call at 100,000 keys, bench/throttle); instances of a class are never pretenured.
 */
export class CallMessage {
  readonly type = 'call';
  readonly work: Work;
  readonly replyTo: ThrottleRef;
  constructor(work: Work, replyTo: ThrottleRef) {
    this.work = work;
    this.replyTo = replyTo;
  }
}

/** A new job for a key's throttle (see CallMessage). */
export class EnqueueMessage {
  readonly type = 'enqueue';
  readonly work: Work;
  constructor(work: Work) {
    this.work = work;
  }
}

/** A call ended and its job left the key: one message for every call (it carries nothing). */
export const CALL_ENDED: ThrottleMessage = Object.freeze({ type: 'call-ended' });

/**
 * Why a key waits: a text (a pause, the ledger away), or the limit that has no room (described
 * only when status is read: a text per refusal would cost an allocation on the hot path).
 */
export type WaitReason = string | LimitCheck | undefined;

/** What every throttle actor of a node shares. */
export interface ThrottleDeps {
  services: NodeServices;
  pool: CollectorPoolRef;
  router: RouterRef;
  /** The actor stopped; `leftovers` are jobs that reached it after it agreed to retire. */
  onStopped: (ref: ThrottleRef, key: string, leftovers: Work[]) => void;
}

export type SpawnThrottle = (
  parent: ParentRef,
  name: string,
  key: string,
  concurrency: number,
) => ThrottleRef;

/** Defines the throttle behaviour once for a node; returns how to spawn one key's actor. */
export function throttleKind(deps: ThrottleDeps): SpawnThrottle {
  const { services } = deps;
  const { stats, ledger, scheduler, config } = services;

  const wakeUp = (self: ThrottleRef): void => tell(self, WAKE);

  /** The job's pause scopes, resolved once, when a pause or slowdown first concerns it. */
  const pauseKeysOf = (work: Work): string[] => {
    if (work.pauseKeys !== undefined) return work.pauseKeys;
    const source = config.sources[work.job.source];
    return (work.pauseKeys =
      source === undefined ? [] : pauseKeysFor(source, templateVars(work.job, services.nodeName)));
  };

  const wakeAt = (state: KeyThrottle, self: ThrottleRef, at: number): void => {
    if (at >= state.wakeAt) return;
    state.wakeAt = at;
    scheduler.at(at, wakeUp, self);
  };

  /**
   * Lets parked jobs go while the ledger grants slots and concurrency allows. Synchronous while
   * the ledger answers at once (the in-memory ledger); a promise while it asks NATS.
   */
  const pump = (state: KeyThrottle, self: ThrottleRef): Promise<void> | undefined => {
    // One look at the clock per pump: the loop takes microseconds, and a slot counts from when
    // its call really leaves (markSent), so a slightly early `now` costs no accuracy.
    const now = services.now();
    while (state.firstInLine !== undefined && state.inFlight < state.concurrency) {
      const head = state.firstInLine;
      if (head.message.settled) {
        // Handed back to JetStream already (after a crash): a redelivery will bring it again.
        state.unparkFirst();
        continue;
      }
      const pause = pausedScope(state, head, now);
      if (pause !== undefined) {
        if (waitUntil(state, self, now, pause.until, `paused: ${pause.reason}`, head, pause.key, true))
          return undefined;
        continue;
      }
      const checks = withSlowdowns(head, now);
      if (now < state.notBefore && sameChecks(checks, state.notBeforeChecks)) {
        const why = state.notBeforeWhy;
        if (
          waitUntil(
            state,
            self,
            now,
            state.notBefore,
            why,
            head,
            typeof why === 'object' ? why.key : undefined,
            false,
          )
        )
          return undefined;
        continue;
      }
      let slot: Reservation | Promise<Reservation>;
      try {
        slot = ledger.reserve(checks, now);
      } catch (error) {
        ledgerDown(state, self, now, error);
        return undefined;
      }
      if (slot instanceof Promise)
        return slot.then(
          (answer) => (take(state, self, head, checks, answer, now) ? pump(state, self) : undefined),
          (error: unknown) => ledgerDown(state, self, now, error),
        );
      if (!take(state, self, head, checks, slot, now)) return undefined;
    }
    state.waitFor(undefined, undefined);
    if (state.parked === 0 && state.inFlight === 0) {
      // An idle key keeps no checks of its last job (their strings and objects).
      state.notBefore = 0;
      state.notBeforeChecks = undefined;
      state.notBeforeWhy = undefined;
      state.keyChecks = undefined;
      state.idleSince = now;
      wakeAt(state, self, state.idleSince + config.node.passivateAfter);
    }
    return undefined;
  };

  /**
   * Acts on the ledger's answer for the head job; true when the next parked job may try (this one
   * left, or went back to JetStream to wait for long).
   */
  const take = (
    state: KeyThrottle,
    self: ThrottleRef,
    head: Work,
    checks: LimitCheck[],
    slot: Reservation,
    now: number,
  ): boolean => {
    if (!slot.granted) {
      // A window's refusal is a lower bound worth keeping; a concurrency cap may free a place as
      // soon as one of this key's own calls ends (call-ended pumps again), so it is not kept.
      state.notBefore = slot.limit.kind === 'concurrent' ? 0 : slot.retryAt;
      state.notBeforeChecks = checks;
      state.notBeforeWhy = slot.limit;
      return !waitUntil(state, self, now, slot.retryAt, slot.limit, head, slot.limit.key, false);
    }
    state.unparkFirst();
    head.reservation = slot.id;
    head.reservedChecks = checks;
    head.reservedAt = slot.at;
    state.inFlight++;
    tell(deps.pool, new CallMessage(head, self));
    return true;
  };

  /** The pause in force on a scope of the head job, if any (noted in the key's status). */
  const pausedScope = (
    state: KeyThrottle,
    head: Work,
    now: number,
  ): { key: string; until: number; reason: string } | undefined => {
    if (ledger.hasSignals)
      for (const pauseKey of pauseKeysOf(head)) {
        const pause = ledger.pausedUntil(pauseKey, now);
        if (pause === undefined) continue;
        state.pausedUntil = pause.until;
        state.pauseReason = pause.reason;
        return { key: pauseKey, until: pause.until, reason: pause.reason };
      }
    state.pausedUntil = undefined;
    state.pauseReason = undefined;
    return undefined;
  };

  /**
   * The head job cannot leave before `until`, held up by `blocker` (a limit's ledger key, or a
   * paused scope when `isPause`): wake up then; true. Waiting for long (a daily quota spent, a long
   * pause), the jobs held up by the same blocker wait in JetStream instead of in memory; the
   * key's other jobs (another app's, when a limit or pause is keyed by {meta.…}) are not held up
   * by it: false when some are parked, to let them go.
   */
  const waitUntil = (
    state: KeyThrottle,
    self: ThrottleRef,
    now: number,
    until: number,
    why: WaitReason,
    head: Work,
    blocker: string | undefined,
    isPause: boolean,
  ): boolean => {
    if (until - now > LONG_PAUSE_MS) {
      spill(state, until - now, head, blocker, isPause);
      if (state.parked > 0) return false;
    }
    state.waitFor(until, why);
    wakeAt(state, self, until);
    return true;
  };

  /** The ledger is in NATS, which may be restarting: no call without a slot; try again soon. */
  const ledgerDown = (state: KeyThrottle, self: ThrottleRef, now: number, error: unknown): void => {
    // Counted for the metrics line (one warning per key would be 100,000 lines).
    stats.ledgerErrors++;
    services.log.debug({ err: error, key: state.key }, 'ledger unavailable; the key waits');
    state.waitFor(now + LEDGER_RETRY_MS, `ledger unavailable: ${(error as Error).message}`);
    wakeAt(state, self, now + LEDGER_RETRY_MS);
  };

  /** A slowed scope adds a limit of one call per interval, kept in the ledger like any other. */
  const withSlowdowns = (work: Work, now: number): LimitCheck[] => {
    let checks = work.checks;
    if (!ledger.hasSignals) return checks;
    for (const pauseKey of pauseKeysOf(work)) {
      const slowdown = ledger.slowedBy(pauseKey, now);
      if (slowdown === undefined) continue;
      if (checks === work.checks) checks = [...work.checks];
      checks.push(slowdownCheck(pauseKey, slowdown.intervalMs));
    }
    return checks;
  };

  /**
   * Waiting for long (a daily quota spent, a long pause): the jobs held up by `blocker` (all of
   * them when it is not known) wait in JetStream, not in memory; the others stay parked in order.
   */
  const spill = (
    state: KeyThrottle,
    delayMs: number,
    head: Work,
    blocker: string | undefined,
    isPause: boolean,
  ): void => {
    for (const work of state.takeParked()) {
      // The head goes in any case, so that the key always moves on.
      const heldUp =
        work === head ||
        blocker === undefined ||
        (isPause ? pauseKeysOf(work).includes(blocker) : work.checks.some((check) => check.key === blocker));
      if (!heldUp) {
        state.park(work, false);
        continue;
      }
      work.message.nak(delayMs + Math.random() * 1_000);
      stats.jobsSpilled++;
    }
  };

  /** Returns a job to the front of the line (its next page, or a retry of the same page). */
  const parkFirst = (state: KeyThrottle, work: Work): void => {
    if (state.draining) work.message.nak(0);
    else state.park(work, true);
  };

  const receive = (
    state: KeyThrottle,
    message: ThrottleMessage,
    ctx: { self: ThrottleRef },
  ): KeyThrottle | Promise<KeyThrottle> => {
    const { self } = ctx;
    switch (message.type) {
      case 'enqueue': {
        state.received++;
        if (state.draining) {
          message.work.message.nak(0);
          return state;
        }
        if (state.parked >= config.node.maxParkedPerKey) {
          // Bounded memory: the key holds enough; the job waits in JetStream until about when its
          // turn would come (the parked jobs ahead of it, at the key's strictest pace).
          const delay = Math.max(1_000, state.parked * paceMs(message.work.checks));
          message.work.message.nak(delay);
          stats.jobsSpilled++;
          return state;
        }
        shareChecks(state, message.work);
        state.park(message.work, false);
        break;
      }
      case 'requeue':
        // Its slot was given back: the ledger may have room sooner than it said with the grant.
        state.notBefore = 0;
        state.inFlight--;
        parkFirst(state, message.work);
        break;
      case 'next-page':
        state.inFlight--;
        parkFirst(state, message.work);
        break;
      case 'throttled':
        state.inFlight--;
        stats.throttleSignals++;
        // The platform refused: what the ledger said about the next slot no longer holds.
        state.notBefore = 0;
        // The pause holds on this node even when NATS cannot spread it (the ledger keeps it in
        // memory first), so a failure to spread it is not worth a crash.
        return (
          message.slowIntervalMs === undefined
            ? ledger.pause(message.scope, message.until, message.reason)
            : ledger.slow(
                message.scope,
                message.until,
                message.slowIntervalMs,
                message.reason,
                services.now(),
              )
        )
          .catch((error: unknown) =>
            services.log.warn(
              { err: error, key: state.key },
              'ledger unavailable: the pause holds on this node only',
            ),
          )
          .then(() => {
            parkFirst(state, message.work);
            return afterPump(state, pump(state, self));
          });
      case 'call-ended':
        state.inFlight--;
        break;
      case 'wake': {
        const now = services.now();
        if (now >= state.wakeAt) state.wakeAt = Number.POSITIVE_INFINITY;
        if (
          state.parked === 0 &&
          state.inFlight === 0 &&
          now - state.idleSince >= config.node.passivateAfter
        ) {
          tell(deps.router, { type: 'throttle-idle', key: state.key, ref: self, received: state.received });
          return state;
        }
        break;
      }
      case 'retire':
        stopActor(self);
        return state;
      case 'release-parked':
        state.draining = true;
        for (const work of state.takeParked()) work.message.nak(0);
        return state;
    }
    return afterPump(state, pump(state, self));
  };

  const spawn = defineActor<KeyThrottle, ThrottleMessage>({
    receive,
    // Found through the router's map of keys, not listed again by their supervisor (each is
    // named by its key).
    unlisted: true,
    supervision: {
      // Resume keeps the parked jobs; only the message that crashed is lost, and it is handled below.
      restart: 'resume',
      backoffBaseMs: 10,
      backoffMaxMs: 5_000,
      maxCrashes: 10,
      windowMs: 60_000,
      onCrash: ({ message, error, crashes, self, state }) => {
        stats.actorRestarts++;
        services.log.error(
          { err: error, key: state?.key, crashes, message: message?.type },
          'throttle actor crashed',
        );
        // A job in the dropped message goes back to JetStream (never dropped silently).
        if (message !== undefined && 'work' in message) message.work.message.nak(1_000);
        // The dropped message may have been the wake-up the parked jobs wait for: send another.
        setTimeout(() => tell(self, WAKE), 1_000).unref();
      },
    },
    afterStop: (state, self) => {
      deps.onStopped(self, state.key, state.takeParked());
    },
  });

  return (parent, name, key, concurrency) => {
    const state = new KeyThrottle(key, concurrency, services.now());
    const ref = spawn(parent, name, () => state);
    stats.throttlesSpawned++;
    return ref;
  };
}

const afterPump = (
  state: KeyThrottle,
  pumped: Promise<void> | undefined,
): KeyThrottle | Promise<KeyThrottle> => (pumped === undefined ? state : pumped.then(() => state));

/**
 * Gives `work` the key's own key string (the router made an equal one for each job) and its shared
 * check objects when its own are equal to them (see keyChecks): what a parked job holds of its
 * own is then only what differs.
 */
function shareChecks(state: KeyThrottle, work: Work): void {
  if (work.key === state.key) work.key = state.key;
  const shared = state.keyChecks;
  if (shared === undefined) state.keyChecks = work.checks;
  else if (work.checks !== shared && sameChecks(work.checks, shared)) work.checks = shared;
}

/** Whether two lists of checks are the same limits with the same weights (usually one list). */
function sameChecks(a: readonly LimitCheck[], b: readonly LimitCheck[] | undefined): boolean {
  if (a === b) return true;
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as LimitCheck;
    const y = b[i] as LimitCheck;
    if (x.key !== y.key || x.weight !== y.weight || x.limit !== y.limit || x.windowMs !== y.windowMs)
      return false;
    if (x.kind !== y.kind) return false;
  }
  return true;
}
