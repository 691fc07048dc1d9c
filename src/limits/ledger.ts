/**
 * One limit a call must fit, for `key`:
 * - `rolling`: at most `limit` weight in any window of `windowMs`;
 * - `utc-day`: at most `limit` weight per UTC calendar day (daily quotas that reset at 00:00 UTC);
 * - `concurrent`: at most `limit` calls in flight at once (each holds a place from its grant
 *   until `release`, or until its lease lapses if its node died); `windowMs` is unused.
 */
export interface LimitCheck {
  key: string;
  kind: 'rolling' | 'utc-day' | 'concurrent';
  limit: number;
  windowMs: number;
  weight: number;
  /**
   * Where a ledger keeps this check's state, remembered on the check by the ledger itself (see
   * MemoryLedger.logOf): a key's calls then skip a lookup in a map of every key the node knows,
   * which was the costliest step of a call at 30,000 keys (bench/throttle). Nothing else reads it.
   */
  ledgerMemo?: object | undefined;
}

/** The smallest average spacing a list of window limits allows (window × weight / limit), 0 without any. */
export const paceMs = (checks: readonly LimitCheck[]): number =>
  checks.reduce(
    (pace, c) => (c.kind === 'concurrent' ? pace : Math.max(pace, (c.windowMs * c.weight) / c.limit)),
    0,
  );

/** The limit a slowdown adds to every call of its scope: one call per interval, kept like any other. */
export const slowdownCheck = (scopeKey: string, intervalMs: number): LimitCheck => ({
  key: `slow|${scopeKey}|${intervalMs}`,
  kind: 'rolling',
  limit: 1,
  windowMs: intervalMs,
  weight: 1,
  ledgerMemo: undefined,
});

/** Whether any check is a concurrency cap (its places are given back when the call ends). */
export const holdsPlaces = (checks: readonly LimitCheck[]): boolean =>
  checks.some((check) => check.kind === 'concurrent');

export type Reservation =
  /** `at`: the time the slot was recorded at (later than asked when the ledger had to retry). */
  | { granted: true; id: number; at: number }
  /**
   * No room before `retryAt`: for windows, no grant can come sooner for these checks (calls only
   * ever leave later than they were counted), so a throttle need not ask again before then. A
   * concurrency cap frees a place whenever a call ends, so its `retryAt` is only when to look
   * again. `limit`: the check without room.
   */
  | {
      granted: false;
      retryAt: number;
      readonly blockedBy: string;
      readonly reason: string;
      readonly limit: LimitCheck;
    };

/**
 * How long after its grant a call may still leave, by default (RateLedger.sendAllowanceMs,
 * `node.sendAllowance`). In fault test (a) on a busy 2-core machine (three nodes, NATS and the
 * emulator) calls left at most 420–620 ms after their grants, most of it waiting for a free
 * collector. A call held up longer is stopped before it is written and waits for a new slot;
 * one second keeps that rare without holding other nodes back for long, since the node that
 * made the call moves it to when it really left a moment after.
 */
export const SEND_ALLOWANCE_MS = 1_000;

export interface LedgerTraffic {
  reads: number;
  writes: number;
  conflicts: number;
}

/**
 * Where calls are counted. Every throttle actor asks it for a slot for each limit that applies
 * to its next call; limits shared by many keys (a whole source, an app) are shared here. The
 * in-memory ledger serves one node; the NATS KV ledger serves a cluster behind the same interface.
 */
export interface RateLedger {
  /**
   * Takes a slot in every check at once, or none and says when to try again. A ledger that can
   * answer at once (in memory) returns the answer itself: no promise on the hot path.
   */
  reserve(checks: readonly LimitCheck[], now: number): Reservation | Promise<Reservation>;
  /**
   * The call left at `sentAt`, later than it was reserved (queueing, event-loop lag): its
   * slot is counted from then, so two calls never reach the API closer than the limit allows.
   */
  markSent(id: number, checks: readonly LimitCheck[], sentAt: number): void | Promise<void>;
  /**
   * When set, a call granted at `at` must leave by `at + sendAllowanceMs` or not at all (the HTTP
   * client stops it before it is written): until `markSent`, the ledger counts it from that latest
   * time, so a node whose call is held up in its event loop, or dies before saying when the call
   * left, never lets another node's call in too close to it. The in-memory ledger, one node's
   * only, needs none: it moves a slot at the moment its call leaves.
   */
  readonly sendAllowanceMs?: number | undefined;
  /** A shared ledger's round trips so far (KV reads, compare-and-set writes, lost races); none in memory. */
  traffic?(): LedgerTraffic;
  /**
   * The call reserved as `id` is about to leave at `now`, well after its slot was taken (it
   * waited for a free collector). Its slot may have left the window meanwhile and another call,
   * from this node or another, taken the room: so the old slot is given back and a new one taken
   * at `now`, or refused with when to try again. `markSent` only protects calls made after it.
   * Like `reserve`, a ledger in memory answers at once.
   */
  retake(id: number, checks: readonly LimitCheck[], now: number): Reservation | Promise<Reservation>;
  /**
   * The call reserved as `id` never left: the HTTP client stopped it before writing a byte, past
   * the latest time its slot allowed. Its slot (in every window and day's count) and its places
   * are given back, as if it had never been reserved: left counted, an unsent call would hold its
   * key back a whole window (and a daily quota's unit) for nothing, and other nodes would poll for
   * it until its latest time.
   */
  cancel(id: number, checks: readonly LimitCheck[]): void | Promise<void>;
  /**
   * The call reserved as `id` ended (answered, failed, or never sent): its places in
   * concurrency caps are free again. A place whose call is never released (its node died) lapses
   * after the ledger's lease time.
   */
  release(id: number, checks: readonly LimitCheck[]): Promise<void>;
  /** Stops every call of a scope key until `until` (a platform said so). */
  pause(key: string, until: number, reason: string): Promise<void>;
  /**
   * The pause in force for a key at `now`, if any. Read from memory (the KV ledger mirrors every
   * node's pauses with a watch): a throttle asks on every attempt, so this is not a promise.
   */
  pausedUntil(key: string, now: number): { until: number; reason: string } | undefined;
  /**
   * Slows every call of a scope key until `until`: at most one call per `intervalMs` (a platform
   * said its quota is nearly used, e.g. Meta's usage headers at 80%). The call that brought the
   * news, at `now`, counts as the first of the slower pace: the next waits a whole interval.
   */
  slow(key: string, until: number, intervalMs: number, reason: string, now: number): Promise<void>;
  /** The slowdown in force for a key at `now`, if any; read from memory like `pausedUntil`. */
  slowedBy(key: string, now: number): Slowdown | undefined;
  /**
   * Whether any pause or slowdown is known at all (expired ones may still count): while none
   * is, a throttle skips looking up each of its scopes on every call.
   */
  readonly hasSignals: boolean;
  close(): Promise<void>;
}

export interface Slowdown {
  until: number;
  intervalMs: number;
  reason: string;
}

/** Merges a new pause or slowdown with the current one: the later end wins, then the slower pace. */
export function laterOf<T extends { until: number; intervalMs?: number }>(
  current: T | undefined,
  next: T,
): T {
  if (current === undefined || next.until > current.until) return next;
  if (next.until === current.until && (next.intervalMs ?? 0) > (current.intervalMs ?? 0)) return next;
  return current;
}
