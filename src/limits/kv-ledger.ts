import { randomUUID } from 'node:crypto';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  laterOf,
  SEND_ALLOWANCE_MS,
  slowdownCheck,
  type LedgerTraffic,
  type LimitCheck,
  type RateLedger,
  type Reservation,
  type Slowdown,
} from './ledger.ts';
import {
  liveLeases,
  liveWaiters,
  placeFit,
  withLease,
  withoutLease,
  withoutWaiter,
  withWaiter,
  type Leases,
  type Waiters,
} from './leases.ts';
import { current, describeLimit, type LedgerOptions } from './memory-ledger.ts';
import { nextUtcMidnight, utcDayStart } from './window-log.ts';

export const LEDGER_BUCKET = 'PRISM_LEDGER';

/**
 * A rolling limit's calls, oldest first: times, ids, weights when not all 1, and `p` (1 where the
 * call has not been confirmed yet: its time is the latest it may leave, see RateLedger.sendAllowanceMs).
 */
interface RollingLog {
  t: number[];
  i: number[];
  w?: number[];
  p?: number[];
}

/**
 * What one limit key holds in KV: the calls in its window (rolling), the day's count, or the
 * calls in flight under a concurrency cap (their ids and when each place lapses).
 */
type Stored = RollingLog | { d: number; n: number } | StoredCap;

/** A concurrency cap: the calls in flight (ids, lapse times) and the nodes waiting in line. */
interface StoredCap {
  c: number[];
  u: number[];
  q?: string[];
  qu?: number[];
}

interface Cached {
  value: Stored | undefined;
  /** KV revision of `value`; 0 when the key does not exist yet. */
  revision: number;
}

/**
 * The cluster's ledger: one JetStream KV entry per limit key, changed only by compare-and-set
 * (read, decide, update with the expected revision, re-read on conflict), so "1 call per 5 s"
 * holds for every node together. Each node caches the entries it last saw: its own keys rarely
 * conflict, so a reservation usually costs one KV update per limit. A key with no limit costs
 * nothing. Pauses live in the same bucket and reach every node through a watch.
 */
export class KvLedger implements RateLedger {
  private readonly kv: KV;
  private readonly cache = new Map<string, Cached>();
  private readonly pauses = new Map<string, { until: number; reason: string }>();
  private readonly slowdowns = new Map<string, Slowdown>();
  private readonly reservedAt = new Map<number, number>();
  private reservationsSweptAt = 0;
  private readonly marginMs: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  readonly sendAllowanceMs: number;
  private readonly log: Logger | undefined;
  private readonly watches: Array<Promise<void>> = [];
  private readonly stopWatches: Array<() => void> = [];
  private closed = false;
  /** Who this node is in a cap's line of waiters (one per ledger, so per node). */
  private readonly nodeId = randomUUID();
  /** KV round trips so far: reads (cache misses, re-reads), writes (CAS), writes that lost a race. */
  private readonly counted: LedgerTraffic = { reads: 0, writes: 0, conflicts: 0 };

  private constructor(kv: KV, options: LedgerOptions, log?: Logger) {
    this.kv = kv;
    this.marginMs = options.marginMs ?? 0;
    this.leaseMs = options.leaseMs ?? 60_000;
    // Looking again costs a KV read here: not as often as in memory.
    this.pollMs = options.concurrencyPollMs ?? 100;
    this.sendAllowanceMs = options.sendAllowanceMs ?? SEND_ALLOWANCE_MS;
    this.log = log;
  }

  static async open(nc: NatsConnection, options: LedgerOptions & { log?: Logger }): Promise<KvLedger> {
    // Entries older than the longest window are useless; a day and a bit covers daily quotas.
    const kv = await new Kvm(nc).create(LEDGER_BUCKET, { history: 1, ttl: 26 * 3_600_000 });
    const ledger = new KvLedger(kv, options, options.log);
    await ledger.watchPauses();
    return ledger;
  }

  traffic(): LedgerTraffic {
    return { ...this.counted };
  }

  reserve(checks: readonly LimitCheck[], asked: number): Promise<Reservation> {
    return this.reserveFor(checks, asked, this.sendAllowanceMs);
  }

  /** `allowanceMs`: how long after the grant the call may leave (0: it has left already). */
  private async reserveFor(
    checks: readonly LimitCheck[],
    asked: number,
    allowanceMs: number,
  ): Promise<Reservation> {
    const id = Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
    if (checks.length === 0) return { granted: true, id, at: asked };
    const started = performance.now();
    // Kinds of limit ('concurrent', 'utc-day') whose refusing counts were read from KV just now
    // rather than the cache; and whether windows held up by another node's unconfirmed call were.
    const freshCounts = new Set<LimitCheck['kind']>();
    let freshWindows = false;
    for (let attempt = 0; attempt < 50; attempt++) {
      // Each attempt decides at its own time: conflicts with other nodes can take tens of ms,
      // and a slot recorded at the first attempt's time would count from before the call left.
      const now = asked + (performance.now() - started);
      const states = await Promise.all(checks.map((c) => this.read(c.key)));
      let retryAt = now;
      let blocked: LimitCheck | undefined;
      let unconfirmed: number | undefined;
      const next: Stored[] = [];
      checks.forEach((check, index) => {
        const plan = this.plan(check, (states[index] as Cached).value, now, id, allowanceMs);
        next.push(plan.value);
        if (plan.fit > retryAt) {
          retryAt = plan.fit;
          blocked = check;
          unconfirmed = plan.unconfirmed;
        }
      });
      if (blocked !== undefined) {
        // The cache shows this node's last view: a window only grows stale on the safe side (calls
        // age out), but a cap's places and a day's count stay full in it until a write conflicts.
        // Another node's call may have ended, or been given back (cancel, retake), since: look at
        // what KV holds before refusing (for a day, a refusal that lasts until midnight).
        const { kind } = blocked;
        if ((kind === 'concurrent' || kind === 'utc-day') && !freshCounts.has(kind)) {
          freshCounts.add(kind);
          await Promise.all(checks.filter((c) => c.kind === kind).map((c) => this.fetch(c.key)));
          continue;
        }
        if (unconfirmed !== undefined) {
          // Held up by a call counted at the latest time it may leave: it may have left since,
          // earlier, and its node moved it there. Another node's call is worth one look at KV
          // (this node's own calls are in the cache as soon as they are confirmed).
          if (!freshWindows && !this.reservedAt.has(unconfirmed)) {
            freshWindows = true;
            await Promise.all(checks.filter((c) => c.kind === 'rolling').map((c) => this.fetch(c.key)));
            continue;
          }
          // Still unconfirmed: no grant before the time the call would free if it had left at once
          // (so this stays a lower bound); until then look again now and then.
          retryAt = Math.min(retryAt, Math.max(retryAt - allowanceMs, now + this.pollMs));
        }
        const limit = blocked;
        if (limit.kind === 'concurrent') await this.waitInLine(limit.key, now);
        return { granted: false, retryAt, limit, blockedBy: limit.key, reason: describeLimit(limit) };
      }
      const written: number[] = [];
      let conflict = false;
      for (let i = 0; i < checks.length; i++) {
        const key = (checks[i] as LimitCheck).key;
        if (await this.write(key, next[i] as Stored, (states[i] as Cached).revision)) written.push(i);
        else {
          conflict = true;
          break;
        }
      }
      if (!conflict) {
        this.rememberReservation(id, now);
        return { granted: true, id, at: now };
      }
      this.counted.conflicts++;
      // All or nothing: take back the slots already written, then decide again on fresh state.
      for (const i of written) await this.removeCall(checks[i] as LimitCheck, id, now);
    }
    throw new Error(`ledger: too many conflicts reserving ${checks.map((c) => c.key).join(', ')}`);
  }

  /**
   * When each slot was taken, until its call leaves (markSent) or it is retaken. A call that never
   * left (its connection failed) leaves its entry behind: forget entries older than any call
   * could wait once there are many.
   */
  private rememberReservation(id: number, at: number): void {
    if (this.reservedAt.size >= 10_000 && at - this.reservationsSweptAt > 60_000) {
      this.reservationsSweptAt = at;
      for (const [old, when] of this.reservedAt) if (when < at - 600_000) this.reservedAt.delete(old);
    }
    this.reservedAt.set(id, at);
  }

  /**
   * Confirms when the call left: an unconfirmed call moves back from the latest time it could
   * leave to `sentAt` (other nodes may then go sooner), a confirmed one only ever later.
   */
  async markSent(id: number, checks: readonly LimitCheck[], sentAt: number): Promise<void> {
    this.reservedAt.delete(id);
    for (const check of checks) {
      if (check.kind !== 'rolling') continue;
      await this.modify(check.key, (value) => {
        if (value === undefined || !('t' in value)) return undefined;
        const index = value.i.indexOf(id);
        if (index < 0) return undefined;
        const pending = value.p?.[index] === 1;
        if (!pending && (value.t[index] as number) >= sentAt) return undefined;
        const t = [...value.t];
        t[index] = sentAt;
        const moved: RollingLog = { ...value, t };
        if (value.p !== undefined) moved.p = value.p.map((flag, j) => (j === index ? 0 : flag));
        return sortLog(moved);
      });
    }
  }

  async retake(id: number, checks: readonly LimitCheck[], now: number): Promise<Reservation> {
    // Not atomic across the two steps: a node that takes the room in between only makes this
    // call wait for the next slot, which is what it would have to do anyway.
    await this.cancel(id, checks);
    return this.reserve(checks, now);
  }

  async cancel(id: number, checks: readonly LimitCheck[]): Promise<void> {
    const reservedAt = this.reservedAt.get(id);
    this.reservedAt.delete(id);
    for (const check of checks) await this.removeCall(check, id, reservedAt);
  }

  async release(id: number, checks: readonly LimitCheck[]): Promise<void> {
    for (const check of checks) if (check.kind === 'concurrent') await this.removeCall(check, id, undefined);
  }

  async pause(key: string, until: number, reason: string): Promise<void> {
    const kept = laterOf(this.pauses.get(key), { until, reason });
    this.pauses.set(key, kept);
    await this.kv.put(`p.${kvKey(key)}`, JSON.stringify({ key, ...kept }));
  }

  pausedUntil(key: string, now: number): { until: number; reason: string } | undefined {
    return current(this.pauses, key, now);
  }

  async slow(key: string, until: number, intervalMs: number, reason: string, now: number): Promise<void> {
    const kept = laterOf(this.slowdowns.get(key), { until, intervalMs, reason });
    this.slowdowns.set(key, kept);
    await this.kv.put(`s.${kvKey(key)}`, JSON.stringify({ key, ...kept }));
    // Refused when a call of the slower pace is already in its interval: then that one counts.
    // The call that brought the news has left already: it counts from `now`, confirmed.
    await this.reserveFor([slowdownCheck(key, kept.intervalMs)], now, 0);
  }

  slowedBy(key: string, now: number): Slowdown | undefined {
    return current(this.slowdowns, key, now);
  }

  get hasSignals(): boolean {
    return this.pauses.size > 0 || this.slowdowns.size > 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stop of this.stopWatches) stop();
  }

  /**
   * Keeps `pauses` and `slowdowns` equal to every node's (a pause set on one node holds on all).
   * Two watches, not one with two keys: that needs filter_subjects, which nats-server 2.9 drops
   * silently (the watch would then stream every ledger update).
   */
  private async watchPauses(): Promise<void> {
    for (const prefix of ['p', 's'] as const) {
      const iterator = await this.kv.watch({ key: `${prefix}.>` });
      this.watches.push(
        (async () => {
          for await (const entry of iterator) {
            if (this.closed) {
              iterator.stop();
              break;
            }
            if (entry.operation !== 'PUT') continue;
            try {
              const { key, ...value } = entry.json<{ key: string } & Slowdown>();
              if (prefix === 's') this.slowdowns.set(key, laterOf(this.slowdowns.get(key), value));
              else
                this.pauses.set(
                  key,
                  laterOf(this.pauses.get(key), { until: value.until, reason: value.reason }),
                );
            } catch (error) {
              this.log?.warn({ err: error }, 'ignoring a malformed pause in the ledger');
            }
          }
        })().catch((error: unknown) => this.log?.warn({ err: error }, 'ledger pause watch ended')),
      );
      this.stopWatches.push(() => iterator.stop());
    }
  }

  private async read(key: string): Promise<Cached> {
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    return this.fetch(key);
  }

  private async fetch(key: string): Promise<Cached> {
    this.counted.reads++;
    const entry: KvEntry | null = await this.kv.get(`l.${kvKey(key)}`);
    // A deleted or purged key keeps its revision: the next write is an update of the tombstone.
    const cached: Cached =
      entry === null || entry.operation !== 'PUT'
        ? { value: undefined, revision: entry?.revision ?? 0 }
        : { value: entry.json<Stored>(), revision: entry.revision };
    // Reads and writes of one key overlap (many throttle actors share a scope): a read that
    // started before this node's own write must not put the older value back in the cache.
    const known = this.cache.get(key);
    if (known !== undefined && known.revision > cached.revision) return known;
    this.cache.set(key, cached);
    return cached;
  }

  /** Compare-and-set; false (and a fresh cache) when another node wrote first. */
  private async write(key: string, value: Stored, revision: number): Promise<boolean> {
    const data = JSON.stringify(value);
    this.counted.writes++;
    try {
      const next =
        revision === 0
          ? await this.kv.create(`l.${kvKey(key)}`, data)
          : await this.kv.update(`l.${kvKey(key)}`, data, revision);
      this.cache.set(key, { value, revision: next });
      return true;
    } catch (error) {
      if (!isConflict(error)) throw error;
      await this.fetch(key);
      return false;
    }
  }

  private async modify(
    key: string,
    change: (value: Stored | undefined) => Stored | undefined,
  ): Promise<void> {
    // Whether the cache was just read from KV (a failed write refreshes it too).
    let fresh = false;
    for (let attempt = 0; attempt < 50; attempt++) {
      const state = await this.read(key);
      const next = change(state.value);
      if (next === undefined) {
        // "Nothing to change" may be the cache's view only (this node's own call not in it yet,
        // when a read overlapped the write that added it): decide again on what KV holds.
        if (fresh) return;
        await this.fetch(key);
        fresh = true;
        continue;
      }
      if (await this.write(key, next, state.revision)) return;
      fresh = true;
    }
  }

  /**
   * Puts this node in line for a cap that refused it (or renews its place in line), so that a
   * node giving a place back and asking again at once does not take it every time. A waiter that
   * stops asking drops out of line after three polls.
   */
  private async waitInLine(key: string, now: number): Promise<void> {
    await this.modify(key, (value) => {
      const cap = value !== undefined && 'c' in value ? value : { c: [], u: [] };
      const waiting = liveWaiters(waitersOf(cap), now);
      const position = waiting.ids.indexOf(this.nodeId);
      // Renewed only when half its time is gone: one write per two polls while it waits.
      if (position >= 0 && (waiting.until[position] as number) > now + 1.5 * this.pollMs) return undefined;
      return capValue({ ids: cap.c, until: cap.u }, withWaiter(waiting, this.nodeId, now + 3 * this.pollMs));
    });
  }

  /**
   * Takes call `id` out of the limit. A day's count does not know its calls: a call comes off it
   * only when it was counted in that same UTC day (`countedAt`, when its slot was granted), so a
   * retake just after midnight does not take yesterday's call off today's count. When that time
   * is not known the count stays as it is: too high a count refuses a call, too low lets one by.
   */
  private async removeCall(check: LimitCheck, id: number, countedAt: number | undefined): Promise<void> {
    await this.modify(check.key, (value) => {
      if (value === undefined) return undefined;
      if ('d' in value) {
        if (countedAt === undefined || utcDayStart(countedAt) !== value.d) return undefined;
        return { d: value.d, n: Math.max(0, value.n - check.weight) };
      }
      if ('c' in value) {
        const rest = withoutLease({ ids: value.c, until: value.u }, id);
        return rest === undefined ? undefined : capValue(rest, waitersOf(value));
      }
      const index = value.i.indexOf(id);
      if (index < 0) return undefined;
      return pick(
        value,
        value.t.map((_, j) => j).filter((j) => j !== index),
      );
    });
  }

  /**
   * When the call fits in this limit, and the stored value with the call added: a window's call
   * at the latest time it may leave, `now + allowanceMs`, unconfirmed until markSent. `unconfirmed`:
   * the id of the unconfirmed call that decides `fit`, if one does.
   */
  private plan(
    check: LimitCheck,
    stored: Stored | undefined,
    now: number,
    id: number,
    allowanceMs: number,
  ): { fit: number; value: Stored; unconfirmed?: number } {
    if (check.kind === 'concurrent') {
      const cap = stored !== undefined && 'c' in stored ? stored : undefined;
      const live = liveLeases(cap && { ids: cap.c, until: cap.u }, now);
      const waiting = liveWaiters(cap && waitersOf(cap), now);
      return {
        fit: placeFit(live, waiting, check.limit, this.nodeId, now, this.pollMs),
        value: capValue(withLease(live, id, now + this.leaseMs), withoutWaiter(waiting, this.nodeId)),
      };
    }
    if (check.kind === 'utc-day') {
      const day = utcDayStart(now);
      const used = stored !== undefined && 'd' in stored && stored.d === day ? stored.n : 0;
      const fit = used + check.weight <= check.limit ? now : nextUtcMidnight(now);
      return { fit, value: { d: day, n: used + check.weight } };
    }
    const windowMs = check.windowMs + this.marginMs;
    // Oldest first, always: eviction and the fit below read the log in order, and a call added
    // by one node may be older than one another node added a moment before.
    const log: RollingLog = stored !== undefined && 't' in stored ? sortedLog(stored) : { t: [], i: [] };
    // Keep only the calls still inside the window: the entry stays as small as the limit.
    const horizon = now - windowMs;
    let first = 0;
    while (first < log.t.length && (log.t[first] as number) <= horizon) first++;
    const { t, i, w, p } = first === 0 ? log : pick(log, log.t.map((_, j) => j).slice(first));
    const weightAt = (j: number): number => (w === undefined ? 1 : (w[j] as number));
    let used = 0;
    for (let j = 0; j < t.length; j++) used += weightAt(j);
    let fit = now;
    let unconfirmed: number | undefined;
    let excess = used + check.weight - check.limit;
    if (check.weight > check.limit) fit = Number.POSITIVE_INFINITY;
    else if (excess > 0) {
      fit = Number.POSITIVE_INFINITY;
      for (let j = 0; j < t.length; j++) {
        excess -= weightAt(j);
        if (excess <= 0) {
          fit = (t[j] as number) + windowMs;
          if (p?.[j] === 1) unconfirmed = i[j];
          break;
        }
      }
    }
    const value: RollingLog = { t: [...t, now + allowanceMs], i: [...i, id] };
    if (w !== undefined || check.weight !== 1) value.w = [...(w ?? t.map(() => 1)), check.weight];
    if (p !== undefined || allowanceMs > 0) value.p = [...(p ?? t.map(() => 0)), allowanceMs > 0 ? 1 : 0];
    const planned = { fit, value: sortedLog(value) };
    return unconfirmed === undefined ? planned : { ...planned, unconfirmed };
  }
}

/** A cap's line of waiting nodes as stored (none when absent). */
function waitersOf(cap: StoredCap): Waiters | undefined {
  return cap.q === undefined ? undefined : { ids: cap.q, until: cap.qu ?? [] };
}

/** A cap as stored: its leases, and its line only while someone waits. */
function capValue(leases: Leases, waiters: Waiters | undefined): StoredCap {
  const cap: StoredCap = { c: leases.ids, u: leases.until };
  if (waiters !== undefined && waiters.ids.length > 0) {
    cap.q = waiters.ids;
    cap.qu = waiters.until;
  }
  return cap;
}

/** The log itself when it is in time order (the usual case), else a sorted copy. */
function sortedLog(value: RollingLog): RollingLog {
  for (let j = 1; j < value.t.length; j++)
    if ((value.t[j] as number) < (value.t[j - 1] as number)) return sortLog(value);
  return value;
}

function sortLog(value: RollingLog): RollingLog {
  return pick(
    value,
    value.t.map((_, j) => j).sort((a, b) => (value.t[a] as number) - (value.t[b] as number)),
  );
}

/**
 * The calls of a log at `order`, in that order, with their weights and flags; `p` only while
 * some call is unconfirmed (a log written before it existed has none: all confirmed).
 */
function pick(log: RollingLog, order: readonly number[]): RollingLog {
  const out: RollingLog = {
    t: order.map((j) => log.t[j] as number),
    i: order.map((j) => log.i[j] as number),
  };
  const { w, p } = log;
  if (w !== undefined) out.w = order.map((j) => w[j] as number);
  if (p !== undefined) {
    const flags = order.map((j) => p[j] ?? 0);
    if (flags.includes(1)) out.p = flags;
  }
  return out;
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; other characters become `_XX` (and `_` itself `_5F`). */
export function kvKey(key: string): string {
  return key
    .replace(/[^-/=.a-zA-Z0-9]/g, (ch) =>
      [...Buffer.from(ch, 'utf8')].map((b) => `_${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
    )
    .replace(/\.{2,}|^\.|\.$/g, (dots) => dots.replace(/\./g, '_2E'));
}

function isConflict(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return (
    /wrong last sequence|key exists|wrong last msg|10071|10164/i.test(text) ||
    (error as { code?: number }).code === 10071
  );
}
