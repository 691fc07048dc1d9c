import { ArrivalWindow } from './arrival-window.ts';
import { ruleName } from './config.ts';
import { DayCount, msToNextUtcDay } from './day-count.ts';
import { InFlightGauge } from './in-flight.ts';
import type { CallScope, EmulatorConfig, KeyStats, LimitRule, RuleStats } from './types.ts';

/** What identifies a call for the limits. */
export interface CallKey {
  platform: string;
  account: string;
  report: string;
  /** The caller's address. */
  ip: string;
  /** The call's query, for `query` rules; such rules skip a call without one. */
  query?: URLSearchParams;
}

/** How one rule judged one arrival (an ArrivalResult for windows; see DayResult for days). */
export interface RuleResult {
  /** Calls counted for the key with this one: in the window, today, or in flight. */
  count: number;
  /** The real platform would refuse this call under this rule. */
  violated: boolean;
  /** Ms until the oldest counted call stops counting (0 for concurrency: it is not known). */
  resetInMs: number;
  /** Ms until one more arrival would be within the rule; 0 when it already would. */
  nextFreeMs: number;
}

export interface RuleHit {
  rule: LimitRule;
  key: string;
  /** What `result.count` is measured against: the rule's `limit`, or its `concurrent`. */
  limit: number;
  result: RuleResult;
}

/**
 * One call from its arrival until it ends; hand it to `LimitBook.depart` when its answer has gone
 * out or its connection closed. Every arrival gets one, so calls that arrived under an earlier
 * config still count against the concurrency rules a new config brings.
 */
export interface Flight {
  readonly call: CallKey;
}

export interface LimitVerdict {
  /** Rules this arrival broke; empty when it was within every limit. */
  broken: RuleHit[];
  /** The applying window or day rule whose count is the highest share after this arrival. */
  strictest: RuleHit | undefined;
  /** Share of the strictest window used, 0–100 (integer). */
  usedPct: number;
  /** The same over app-wide windows only (platform, platform-report, ip): Meta's X-App-Usage. */
  appUsedPct: number;
  /** Ms until every applying limit would take one more call (0 when all would now). */
  retryAfterMs: number;
  /** This arrival went over the account's daily quota or a calendar-day (`utc-day`) rule. */
  quotaExceeded: boolean;
  /** Ms until the next 00:00 UTC, when daily quotas start over. */
  quotaResetMs: number;
  /** This call, in flight until `LimitBook.depart(flight)`. */
  flight: Flight;
}

/**
 * What a refused concurrent call is told to wait: a slot frees when some call in flight ends,
 * which the emulator cannot foresee. Every style rounds it up to whole seconds anyway.
 */
export const CONCURRENCY_RETRY_MS = 1000;

export function scopeKey(scope: CallScope, call: CallKey): string {
  switch (scope) {
    case 'account':
      return `account:${call.platform}/${call.account}`;
    case 'account-report':
      return `account-report:${call.platform}/${call.account}/${call.report}`;
    case 'platform':
      return `platform:${call.platform}`;
    case 'platform-report':
      return `platform-report:${call.platform}/${call.report}`;
    case 'ip':
      return `ip:${call.platform}/${call.ip}`;
  }
}

/** The key a `query` rule counts a call under: `query:appsflyer/app_id=id1`. */
export function queryKey(platform: string, param: string, value: string): string {
  return `query:${platform}/${param}=${value}`;
}

/** The rule's key for this call; undefined when a `query` rule's parameter is not in the call. */
export function ruleKey(rule: LimitRule, call: CallKey): string | undefined {
  if (rule.scope !== 'query') return scopeKey(rule.scope, call);
  const value = call.query?.get(rule.param);
  return value === null || value === undefined ? undefined : queryKey(call.platform, rule.param, value);
}

export function ruleApplies(rule: LimitRule, call: CallKey): boolean {
  return (
    (rule.platform === undefined || rule.platform === call.platform) &&
    (rule.report === undefined || rule.report === call.report)
  );
}

function isAppWide(rule: LimitRule): boolean {
  return rule.scope === 'platform' || rule.scope === 'platform-report' || rule.scope === 'ip';
}

interface KeyEntry {
  calls: number;
  violations: number;
  minGapMs: number;
  last: number;
  /** Arrival number that last touched this entry, so two rules on one key count a call once. */
  seenSeq: number;
  brokenSeq: number;
}

/** The bookkeeping a rule needs, by shape. */
type RuleCounter =
  | { kind: 'window'; window: ArrivalWindow }
  | { kind: 'day'; days: DayCount }
  | { kind: 'concurrent'; gauge: InFlightGauge };

interface RuleEntry {
  rule: LimitRule;
  /** `limit`, or `concurrent` for concurrency rules. */
  allowance: number;
  counter: RuleCounter;
  calls: number;
  violations: number;
}

/** A call's place in one concurrency rule's gauge, to leave when the call ends. */
interface Hold {
  gauge: InFlightGauge;
  key: string;
}

function ruleEntry(rule: LimitRule): RuleEntry {
  const entry = { rule, calls: 0, violations: 0 };
  if (rule.concurrent !== undefined) {
    return {
      ...entry,
      allowance: rule.concurrent,
      counter: { kind: 'concurrent', gauge: new InFlightGauge() },
    };
  }
  if (rule.reset === 'utc-day') {
    return { ...entry, allowance: rule.limit, counter: { kind: 'day', days: new DayCount() } };
  }
  return {
    ...entry,
    allowance: rule.limit,
    counter: { kind: 'window', window: new ArrivalWindow(rule.limit, rule.perMs) },
  };
}

/**
 * Every limit of one config: a window, day count or in-flight gauge per rule, per-key figures for
 * reports, daily quotas, and the calls in flight. Pure bookkeeping — times come in as arguments
 * and calls end when the caller says so — so tests drive it with made-up clocks.
 */
export class LimitBook {
  private rules: RuleEntry[] = [];
  private config: EmulatorConfig;
  private readonly keys = new Map<string, KeyEntry>();
  private readonly quotas = new DayCount();
  /** Calls in flight → their places in the concurrency gauges of the current rules. */
  private readonly live = new Map<Flight, Hold[]>();
  private seq = 0;
  violations = 0;
  quotaExceeded = 0;

  constructor(config: EmulatorConfig) {
    this.config = config;
    this.setConfig(config);
  }

  /** Calls that arrived and have not departed. */
  get inFlight(): number {
    return this.live.size;
  }

  /** Keys with calls in flight, summed over the concurrency rules (0 once every call ended). */
  get inFlightKeys(): number {
    let n = 0;
    for (const { counter } of this.rules) if (counter.kind === 'concurrent') n += counter.gauge.keys;
    return n;
  }

  /**
   * New rules start with empty windows; per-key figures stay. Calls in flight are in flight
   * whatever the config, so they are counted again against the new concurrency rules (and leave
   * those when they end), and the old rules' gauges are dropped with the old rules.
   */
  setConfig(config: EmulatorConfig): void {
    this.config = config;
    this.rules = config.limits.map(ruleEntry);
    this.quotas.clear();
    for (const [flight, holds] of this.live) {
      holds.length = 0;
      for (const entry of this.rules) {
        if (entry.counter.kind !== 'concurrent' || !ruleApplies(entry.rule, flight.call)) continue;
        const key = ruleKey(entry.rule, flight.call);
        if (key === undefined) continue;
        entry.counter.gauge.enter(key);
        holds.push({ gauge: entry.counter.gauge, key });
      }
    }
  }

  /**
   * Records one arrival: `now` is a monotonic time in ms (`performance.now()`), `wallMs` the wall
   * clock (`Date.now()`) for calendar days. The call stays in flight until `depart(verdict.flight)`.
   */
  arrive(call: CallKey, now: number, wallMs: number): LimitVerdict {
    const seq = ++this.seq;
    const flight: Flight = { call };
    const holds: Hold[] = [];
    const broken: RuleHit[] = [];
    let strictest: RuleHit | undefined;
    let strictestUse = -1;
    let appUse = 0;
    let retryAfterMs = 0;
    let dayRuleBroken = false;
    // The account key is always kept, so reports show per-account gaps even without limits.
    this.touchKey(scopeKey('account', call), now, seq, false);
    for (const entry of this.rules) {
      if (!ruleApplies(entry.rule, call)) continue;
      const key = ruleKey(entry.rule, call);
      if (key === undefined) continue;
      const result = judge(entry, key, now, wallMs, holds);
      entry.calls++;
      if (result.violated) entry.violations++;
      this.touchKey(key, now, seq, result.violated);
      const hit: RuleHit = { rule: entry.rule, key, limit: entry.allowance, result };
      if (result.violated) {
        broken.push(hit);
        if (entry.counter.kind === 'day') dayRuleBroken = true;
      }
      if (result.nextFreeMs > retryAfterMs) retryAfterMs = result.nextFreeMs;
      // Calls in flight are no share of a window: usage headers describe the windows and days.
      if (entry.counter.kind === 'concurrent') continue;
      const use = result.count / entry.allowance;
      if (isAppWide(entry.rule)) appUse = Math.max(appUse, use);
      if (use > strictestUse || (use === strictestUse && result.resetInMs > strictest!.result.resetInMs)) {
        strictest = hit;
        strictestUse = use;
      }
    }

    let quotaBroken = false;
    const quota = this.quotaOf(call.platform);
    if (quota !== undefined) {
      const key = `daily:${call.platform}/${call.account}`;
      quotaBroken = this.quotas.arrive(key, wallMs, quota).violated;
      this.touchKey(key, now, seq, quotaBroken);
    }
    const quotaExceeded = quotaBroken || dayRuleBroken;
    if (quotaExceeded) this.quotaExceeded++;
    if (broken.length > 0 || quotaExceeded) this.violations++;
    this.live.set(flight, holds);
    return {
      broken,
      strictest,
      usedPct: Math.min(100, Math.round(Math.max(0, strictestUse) * 100)),
      appUsedPct: Math.min(100, Math.round(appUse * 100)),
      retryAfterMs,
      quotaExceeded,
      quotaResetMs: msToNextUtcDay(wallMs),
      flight,
    };
  }

  /**
   * The call has ended (its answer has gone out, or its connection closed). Idempotent, and safe
   * across `clear()` and `setConfig()`: a call leaves exactly the gauges it is counted in now.
   */
  depart(flight: Flight): void {
    const holds = this.live.get(flight);
    if (holds === undefined) return;
    this.live.delete(flight);
    for (const { gauge, key } of holds) gauge.leave(key);
  }

  private quotaOf(platform: string): number | undefined {
    const own = Object.hasOwn(this.config.platforms, platform)
      ? this.config.platforms[platform]?.dailyQuota
      : undefined;
    return own ?? this.config.dailyQuota;
  }

  private touchKey(key: string, now: number, seq: number, broken: boolean): void {
    let entry = this.keys.get(key);
    if (entry === undefined) {
      entry = { calls: 0, violations: 0, minGapMs: Infinity, last: -Infinity, seenSeq: 0, brokenSeq: 0 };
      this.keys.set(key, entry);
    }
    if (entry.seenSeq !== seq) {
      entry.seenSeq = seq;
      entry.calls++;
      const gap = now - entry.last;
      if (gap < entry.minGapMs) entry.minGapMs = gap;
      entry.last = now;
    }
    if (broken && entry.brokenSeq !== seq) {
      entry.brokenSeq = seq;
      entry.violations++;
    }
  }

  byKey(): Record<string, KeyStats> {
    const out: Record<string, KeyStats> = {};
    for (const [key, entry] of this.keys) {
      out[key] = {
        calls: entry.calls,
        violations: entry.violations,
        minGapMs: Number.isFinite(entry.minGapMs) ? entry.minGapMs : null,
      };
    }
    return out;
  }

  byRule(): RuleStats[] {
    return this.rules.map(({ rule, counter, calls, violations }) => ({
      name: ruleName(rule),
      scope: rule.scope,
      platform: rule.platform ?? null,
      report: rule.report ?? null,
      param: rule.param ?? null,
      limit: rule.limit ?? null,
      perMs: rule.perMs ?? null,
      reset: rule.reset ?? null,
      concurrent: rule.concurrent ?? null,
      calls,
      violations,
      maxInFlight: counter.kind === 'concurrent' ? counter.gauge.max : 0,
    }));
  }

  /**
   * Zeroes every window, day count, quota and figure. Calls in flight stay counted in the
   * concurrency gauges, as they are still in flight, and leave them when they end; each rule's
   * `maxInFlight` starts over from them.
   */
  clear(): void {
    for (const entry of this.rules) {
      const { counter } = entry;
      if (counter.kind === 'window') counter.window.clear();
      else if (counter.kind === 'day') counter.days.clear();
      else counter.gauge.resetMax();
      entry.calls = 0;
      entry.violations = 0;
    }
    this.keys.clear();
    this.quotas.clear();
    this.violations = 0;
    this.quotaExceeded = 0;
  }
}

/** Records the arrival in the rule's counter; a concurrency rule also takes a place in `holds`. */
function judge(entry: RuleEntry, key: string, now: number, wallMs: number, holds: Hold[]): RuleResult {
  const { counter, allowance } = entry;
  switch (counter.kind) {
    case 'window':
      return counter.window.arrive(key, now);
    case 'day':
      return counter.days.arrive(key, wallMs, allowance);
    case 'concurrent': {
      // Refused calls are in flight too (the platform holds them until it answers), so they count.
      const n = counter.gauge.enter(key);
      holds.push({ gauge: counter.gauge, key });
      return {
        count: n,
        violated: n > allowance,
        resetInMs: 0,
        nextFreeMs: n >= allowance ? CONCURRENCY_RETRY_MS : 0,
      };
    }
  }
}
