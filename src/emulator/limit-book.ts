import { ArrivalWindow } from './arrival-window.ts';
import type { ArrivalResult } from './arrival-window.ts';
import { ruleName } from './config.ts';
import type { EmulatorConfig, KeyStats, LimitRule, LimitScope, RuleStats } from './types.ts';

/** What identifies a call for the limits. */
export interface CallKey {
  platform: string;
  account: string;
  report: string;
  /** The caller's address. */
  ip: string;
}

export interface RuleHit {
  rule: LimitRule;
  key: string;
  result: ArrivalResult;
}

export interface LimitVerdict {
  /** Rules this arrival broke; empty when it was within every limit. */
  broken: RuleHit[];
  /** The applying rule whose window is the most used after this arrival. */
  strictest: RuleHit | undefined;
  /** Share of the strictest window used, 0–100 (integer). */
  usedPct: number;
  /** The same over app-wide windows only (platform, platform-report, ip): Meta's X-App-Usage. */
  appUsedPct: number;
  /** Ms until every applying limit would take one more call (0 when all would now). */
  retryAfterMs: number;
  /** This arrival went over the account's daily quota. */
  quotaExceeded: boolean;
  /** Ms until the next 00:00 UTC, when daily quotas start over. */
  quotaResetMs: number;
}

const DAY_MS = 86_400_000;

export function scopeKey(scope: LimitScope, call: CallKey): string {
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

export function ruleApplies(rule: LimitRule, call: CallKey): boolean {
  return (
    (rule.platform === undefined || rule.platform === call.platform) &&
    (rule.report === undefined || rule.report === call.report)
  );
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

interface RuleEntry {
  rule: LimitRule;
  window: ArrivalWindow;
  calls: number;
  violations: number;
}

interface QuotaEntry {
  day: number;
  count: number;
}

/**
 * Every limit of one config: a window per rule, per-key figures for reports, daily quotas.
 * Pure bookkeeping — times come in as arguments — so tests drive it with made-up clocks.
 */
export class LimitBook {
  private rules: RuleEntry[] = [];
  private config: EmulatorConfig;
  private readonly keys = new Map<string, KeyEntry>();
  private readonly quotas = new Map<string, QuotaEntry>();
  private seq = 0;
  violations = 0;
  quotaExceeded = 0;

  constructor(config: EmulatorConfig) {
    this.config = config;
    this.setConfig(config);
  }

  /** New rules start with empty windows; per-key figures stay. */
  setConfig(config: EmulatorConfig): void {
    this.config = config;
    this.rules = config.limits.map((rule) => ({
      rule,
      window: new ArrivalWindow(rule.limit, rule.perMs),
      calls: 0,
      violations: 0,
    }));
    this.quotas.clear();
  }

  /**
   * Records one arrival: `now` is a monotonic time in ms (`performance.now()`), `wallMs` the wall
   * clock (`Date.now()`) for the calendar-day quota.
   */
  arrive(call: CallKey, now: number, wallMs: number): LimitVerdict {
    const seq = ++this.seq;
    const broken: RuleHit[] = [];
    let strictest: RuleHit | undefined;
    let strictestUse = -1;
    let appUse = 0;
    let retryAfterMs = 0;
    // The account key is always kept, so reports show per-account gaps even without limits.
    this.touchKey(scopeKey('account', call), now, seq, false);
    for (const entry of this.rules) {
      if (!ruleApplies(entry.rule, call)) continue;
      const key = scopeKey(entry.rule.scope, call);
      const result = entry.window.arrive(key, now);
      entry.calls++;
      if (result.violated) entry.violations++;
      this.touchKey(key, now, seq, result.violated);
      const hit = { rule: entry.rule, key, result };
      if (result.violated) broken.push(hit);
      const use = result.count / entry.rule.limit;
      if (
        entry.rule.scope === 'platform' ||
        entry.rule.scope === 'platform-report' ||
        entry.rule.scope === 'ip'
      ) {
        appUse = Math.max(appUse, use);
      }
      if (use > strictestUse || (use === strictestUse && result.resetInMs > strictest!.result.resetInMs)) {
        strictest = hit;
        strictestUse = use;
      }
      if (result.nextFreeMs > retryAfterMs) retryAfterMs = result.nextFreeMs;
    }

    let quotaExceeded = false;
    const day = Math.floor(wallMs / DAY_MS);
    const quotaResetMs = (day + 1) * DAY_MS - wallMs;
    const quota = this.quotaOf(call.platform);
    if (quota !== undefined) {
      const key = `daily:${call.platform}/${call.account}`;
      let entry = this.quotas.get(key);
      if (entry === undefined || entry.day !== day) {
        entry = { day, count: 0 };
        this.quotas.set(key, entry);
      }
      // Every call counts, refused ones too, as with the sliding windows.
      quotaExceeded = entry.count >= quota;
      entry.count++;
      this.touchKey(key, now, seq, quotaExceeded);
      if (quotaExceeded) this.quotaExceeded++;
    }

    if (broken.length > 0 || quotaExceeded) this.violations++;
    return {
      broken,
      strictest,
      usedPct: Math.min(100, Math.round(Math.max(0, strictestUse) * 100)),
      appUsedPct: Math.min(100, Math.round(appUse * 100)),
      retryAfterMs,
      quotaExceeded,
      quotaResetMs,
    };
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
    return this.rules.map(({ rule, calls, violations }) => ({
      name: ruleName(rule),
      scope: rule.scope,
      platform: rule.platform ?? null,
      report: rule.report ?? null,
      limit: rule.limit,
      perMs: rule.perMs,
      calls,
      violations,
    }));
  }

  /** Zeroes every window, quota and figure. */
  clear(): void {
    for (const entry of this.rules) {
      entry.window.clear();
      entry.calls = 0;
      entry.violations = 0;
    }
    this.keys.clear();
    this.quotas.clear();
    this.violations = 0;
    this.quotaExceeded = 0;
  }
}
