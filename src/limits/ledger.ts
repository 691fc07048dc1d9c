/** One limit a call must fit: at most `limit` weight in any window of `windowMs` for `key`. */
export interface LimitCheck {
  key: string;
  limit: number;
  windowMs: number;
  /** `utc-day`: the count resets at 00:00 UTC (daily quotas) instead of rolling. */
  reset: 'rolling' | 'utc-day';
  weight: number;
}

export type Reservation =
  /** `at`: the time the slot was recorded at (later than asked when the ledger had to retry). */
  | { granted: true; id: number; at: number }
  /**
   * No room before `retryAt`: no grant can come sooner for these checks (calls only ever leave
   * later than they were counted), so a throttle need not ask again before then. `limit`: the
   * check without room, when the ledger has it at hand (else only `reason`).
   */
  | {
      granted: false;
      retryAt: number;
      readonly blockedBy: string;
      readonly reason: string;
      readonly limit?: LimitCheck;
    };

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
  markSent(id: number, checks: readonly LimitCheck[], sentAt: number): Promise<void>;
  /**
   * The call reserved as `id` is about to leave at `now`, well after its slot was taken (it
   * waited for a free collector). Its slot may have left the window meanwhile and another call,
   * from this node or another, taken the room: so the old slot is given back and a new one taken
   * at `now`, or refused with when to try again. `markSent` only protects calls made after it.
   */
  retake(id: number, checks: readonly LimitCheck[], now: number): Promise<Reservation>;
  /** Stops every call of a scope key until `until` (a platform said so). */
  pause(key: string, until: number, reason: string): Promise<void>;
  /**
   * The pause in force for a key at `now`, if any. Read from memory (the KV ledger mirrors every
   * node's pauses with a watch): a throttle asks on every attempt, so this is not a promise.
   */
  pausedUntil(key: string, now: number): { until: number; reason: string } | undefined;
  /**
   * Slows every call of a scope key until `until`: at most one call per `intervalMs` (a platform
   * said its quota is nearly used, e.g. Meta's usage headers at 80%).
   */
  slow(key: string, until: number, intervalMs: number, reason: string): Promise<void>;
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
