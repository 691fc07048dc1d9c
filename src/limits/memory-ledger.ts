import {
  laterOf,
  slowdownCheck,
  type LimitCheck,
  type RateLedger,
  type Reservation,
  type Slowdown,
} from './ledger.ts';
import { leaseFit, liveLeases, withLease, withoutLease, type Leases } from './leases.ts';
import { nextUtcMidnight, utcDayStart, WindowLog } from './window-log.ts';

export interface LedgerOptions {
  /** Added to every rolling window, for transit jitter and clock skew. */
  marginMs?: number;
  /** How long a place in a concurrency cap lasts if its call is never released (its node died). */
  leaseMs?: number;
  /** How soon a key refused by a concurrency cap looks again (a call may end any moment). */
  concurrencyPollMs?: number;
  /**
   * KV ledger only: how long after its grant a call may still leave (see KvLedger). Other nodes
   * count the call from that latest time until the node that made it says when it left.
   */
  sendAllowanceMs?: number;
}

/**
 * The ledger of one node: exact sliding windows and concurrency caps in memory. Correct for a
 * single node only; a cluster uses the KV ledger. `marginMs` widens every rolling window to
 * absorb transit jitter.
 */
export class MemoryLedger implements RateLedger {
  private readonly logs = new Map<string, LedgerLog>();
  /** Calls in flight per concurrency cap. */
  private readonly leases = new Map<string, Leases>();
  private readonly pauses = new Map<string, { until: number; reason: string }>();
  private readonly slowdowns = new Map<string, Slowdown>();
  private nextId = 1;
  private readonly marginMs: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private longestWindowMs = 0;

  constructor(options: LedgerOptions = {}) {
    this.marginMs = options.marginMs ?? 0;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.pollMs = options.concurrencyPollMs ?? 25;
  }

  reserve(checks: readonly LimitCheck[], now: number): Reservation {
    let retryAt = now;
    let blocked: LimitCheck | undefined;
    for (const check of checks) {
      const fit =
        check.kind === 'concurrent'
          ? leaseFit(this.liveLeases(check.key, now), check.limit, now, this.pollMs)
          : this.fit(check, this.prepare(check, now), now);
      if (fit > retryAt) {
        retryAt = fit;
        blocked = check;
      }
    }
    if (blocked !== undefined) return new Refusal(retryAt, blocked);
    const id = this.nextId++;
    for (const check of checks) {
      if (check.kind === 'concurrent')
        this.leases.set(check.key, withLease(this.liveLeases(check.key, now), id, now + this.leaseMs));
      else this.logOf(check).add(now, check.weight, id);
    }
    return new Grant(id, now);
  }

  /**
   * The log of a window check, found through the check's memo when this ledger wrote it there
   * (a throttle actor gives its parked jobs the same check objects), else through the map.
   */
  private logOf(check: LimitCheck): LedgerLog {
    let log = this.existingLogOf(check);
    if (log === undefined) {
      log = new LedgerLog(this);
      this.logs.set(check.key, log);
    }
    check.ledgerMemo = log;
    return log;
  }

  /** The log of a window check if it has one (nothing is created). */
  private existingLogOf(check: LimitCheck): LedgerLog | undefined {
    const memo = check.ledgerMemo as LedgerLog | undefined;
    // Another ledger's memo is not ours; a log the sweep dropped is never used again.
    if (memo !== undefined && memo.owner === this && !memo.dropped) return memo;
    return this.logs.get(check.key);
  }

  /** The places of a cap still held at `now`; lapsed ones are dropped for good. */
  private liveLeases(key: string, now: number): Leases {
    const held = this.leases.get(key);
    const live = liveLeases(held, now);
    if (live !== held) this.leases.set(key, live);
    return live;
  }

  async release(id: number, checks: readonly LimitCheck[]): Promise<void> {
    this.releaseNow(id, checks);
  }

  private releaseNow(id: number, checks: readonly LimitCheck[]): void {
    for (const check of checks) {
      if (check.kind !== 'concurrent') continue;
      const rest = withoutLease(this.leases.get(check.key), id);
      if (rest === undefined) continue;
      if (rest.ids.length === 0) this.leases.delete(check.key);
      else this.leases.set(check.key, rest);
    }
  }

  /** When a call of `check` fits in `log` (evicted for `now`). */
  private fit(check: LimitCheck, log: WindowLog, now: number): number {
    if (check.kind === 'utc-day')
      return log.used() + check.weight <= check.limit ? now : nextUtcMidnight(now);
    return log.earliestFit(now, check.limit, check.weight, this.windowOf(check));
  }

  /** Done at once: a call in memory costs no promise for it (one per call at 100,000 keys). */
  markSent(id: number, checks: readonly LimitCheck[], sentAt: number): void {
    for (const check of checks)
      if (check.kind !== 'concurrent') this.existingLogOf(check)?.moveLater(id, sentAt);
  }

  /** Answers at once, as `reserve` does: a call that waited for the pool costs it no promise. */
  retake(id: number, checks: readonly LimitCheck[], now: number): Reservation {
    this.cancel(id, checks);
    return this.reserve(checks, now);
  }

  /** A day's log holds its calls by id too: a call comes off the day it was counted in, or none. */
  cancel(id: number, checks: readonly LimitCheck[]): void {
    for (const check of checks) if (check.kind !== 'concurrent') this.existingLogOf(check)?.remove(id);
    this.releaseNow(id, checks);
  }

  async pause(key: string, until: number, reason: string): Promise<void> {
    this.pauses.set(key, laterOf(this.pauses.get(key), { until, reason }));
  }

  async slow(key: string, until: number, intervalMs: number, reason: string, now: number): Promise<void> {
    const kept = laterOf(this.slowdowns.get(key), { until, intervalMs, reason });
    this.slowdowns.set(key, kept);
    // Refused when a call of the slower pace is already in its interval: then that one counts.
    this.reserve([slowdownCheck(key, kept.intervalMs)], now);
  }

  slowedBy(key: string, now: number): Slowdown | undefined {
    return current(this.slowdowns, key, now);
  }

  get hasSignals(): boolean {
    return this.pauses.size > 0 || this.slowdowns.size > 0;
  }

  pausedUntil(key: string, now: number): { until: number; reason: string } | undefined {
    return current(this.pauses, key, now);
  }

  /**
   * Forgets keys whose newest call is older than the longest window any limit has asked about
   * (a day at least, for daily quotas): memory stays bounded by the keys still in use. The node
   * calls it every minute.
   */
  sweep(now: number): void {
    const horizon = now - Math.max(this.longestWindowMs, 86_400_000) - this.marginMs;
    for (const [key, log] of this.logs)
      if (log.newest() < horizon) {
        // Checks may still remember it: they must not write to a log the map no longer has.
        log.dropped = true;
        this.logs.delete(key);
      }
    for (const key of this.leases.keys())
      if (this.liveLeases(key, now).ids.length === 0) this.leases.delete(key);
    for (const signals of [this.pauses, this.slowdowns])
      for (const [key, signal] of signals) if (signal.until <= now) signals.delete(key);
  }

  get keyCount(): number {
    return this.logs.size;
  }

  async close(): Promise<void> {}

  private windowOf(check: LimitCheck): number {
    return check.windowMs + this.marginMs;
  }

  private prepare(check: LimitCheck, now: number): WindowLog {
    const log = this.logOf(check);
    if (check.windowMs > this.longestWindowMs) this.longestWindowMs = check.windowMs;
    if (check.kind === 'utc-day') log.evictBefore(utcDayStart(now));
    else log.evict(now, this.windowOf(check));
    return log;
  }
}

/** A window log of one MemoryLedger, which checks may remember (LimitCheck.ledgerMemo). */
class LedgerLog extends WindowLog {
  readonly owner: MemoryLedger;
  /** Swept out of the ledger's map: whoever still holds it must look the key up again. */
  dropped = false;
  constructor(owner: MemoryLedger) {
    super();
    this.owner = owner;
  }
}

/**
 * A grant and a refusal are class instances, not object literals: V8 may decide to allocate all
 * objects of a literal in the old generation ("pretenuring") when most of them outlived a
 * young-generation collection, as they do while 100,000 keys arrive at once. Each then stays
 * there as garbage until the next full collection; instances of a class never are.
 */
class Grant {
  readonly granted = true;
  readonly id: number;
  readonly at: number;
  constructor(id: number, at: number) {
    this.id = id;
    this.at = at;
  }
}

/** A refusal whose text is written only if someone reads it (a key's status, a log line). */
class Refusal {
  readonly granted = false;
  readonly retryAt: number;
  readonly limit: LimitCheck;
  constructor(retryAt: number, limit: LimitCheck) {
    this.retryAt = retryAt;
    this.limit = limit;
  }
  get blockedBy(): string {
    return this.limit.key;
  }
  get reason(): string {
    return describeLimit(this.limit);
  }
}

export function describeLimit(check: LimitCheck): string {
  if (check.kind === 'concurrent') return `at most ${check.limit} in flight on ${check.key}`;
  const per = check.kind === 'utc-day' ? 'UTC day' : `${check.windowMs}ms`;
  return `limit ${check.limit}/${per} on ${check.key}`;
}

/** The entry for `key` while it lasts (expired ones are dropped). */
export function current<T extends { until: number }>(
  entries: Map<string, T>,
  key: string,
  now: number,
): T | undefined {
  const entry = entries.get(key);
  if (entry === undefined) return undefined;
  if (entry.until <= now) {
    entries.delete(key);
    return undefined;
  }
  return entry;
}
