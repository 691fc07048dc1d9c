/**
 * Types of the ad-platform emulator (`prism mock-api`). The emulator exists to prove that Prism
 * keeps every limit, so it is strict: it records each arrival the moment it is parsed and counts
 * every call that would have been refused by the real platform as a violation.
 */

/** How a platform answers: the shape of its pages and how it signals throttling. */
export type EmulatorStyle = 'generic' | 'meta' | 'tiktok' | 'google' | 'naver' | 'kakao';

export const EMULATOR_STYLES: readonly EmulatorStyle[] = [
  'generic',
  'meta',
  'tiktok',
  'google',
  'naver',
  'kakao',
];

/**
 * Which arrivals a rule counts together (in one window, day count or in-flight count):
 * - `account`: one platform account across all its reports (`account:meta/act_1`)
 * - `account-report`: one report of one account (`account-report:meta/act_1/insights`)
 * - `platform`: the whole platform, i.e. the app/developer token (`platform:meta`)
 * - `platform-report`: one report across all accounts (`platform-report:meta/insights`)
 * - `ip`: the caller's address, per platform (`ip:meta/127.0.0.1`)
 * - `query`: the value of the rule's query parameter, per platform (`query:appsflyer/app_id=id1`),
 *   for limits a platform counts per something other than the account (AppsFlyer's per app, where
 *   several accounts share one app); calls without the parameter do not count under the rule
 */
export type LimitScope = 'account' | 'platform' | 'platform-report' | 'account-report' | 'ip' | 'query';

export const LIMIT_SCOPES: readonly LimitScope[] = [
  'account',
  'platform',
  'platform-report',
  'account-report',
  'ip',
  'query',
];

/** The scopes whose key comes from the call's path or address alone. */
export type CallScope = Exclude<LimitScope, 'query'>;

/** Where a rule applies and what it says when broken; shared by every rule shape. */
interface RuleCommon {
  /** Only for this platform; every platform (each with its own keys) when absent. */
  platform?: string;
  /** Only for this report (last path segment); every report when absent. */
  report?: string;
  /**
   * Error code of the throttle signal for styles that carry one: Meta (default 17 for account
   * scopes, 4 for app-wide scopes, 80000 for calendar-day limits; e.g. 80000 for business-use-case
   * limits, 613) and TikTok (default 40100).
   */
  code?: number;
  /** Label in stats; defaults to `scope[:platform][/report][ param] <shape>` (see ruleName). */
  name?: string;
}

/** What a rule's keys are: a `query` rule names its parameter, the others have none. */
export type RuleKeying = { scope: CallScope; param?: never } | { scope: 'query'; param: string };

/** At most `limit` arrivals in any window of `perMs` for each key (an exact sliding window). */
export interface WindowShape {
  /** Integer ≥ 1. */
  limit: number;
  /** Window length in milliseconds (> 0). */
  perMs: number;
  reset?: never;
  concurrent?: never;
}

/** At most `limit` arrivals per UTC calendar day (00:00 to 00:00 UTC) for each key. */
export interface DailyShape {
  /** Integer ≥ 1. */
  limit: number;
  reset: 'utc-day';
  perMs?: never;
  concurrent?: never;
}

/**
 * At most `concurrent` calls of one key in flight at once. A call is in flight from its arrival
 * until its whole answer has gone to the socket or its connection closes; every arrival counts,
 * refused calls, hanging and reset faults included.
 */
export interface ConcurrencyShape {
  /** Integer ≥ 1. */
  concurrent: number;
  limit?: never;
  perMs?: never;
  reset?: never;
}

/** What a rule allows each key. */
export type RuleShape = WindowShape | DailyShape | ConcurrencyShape;

/**
 * One limit the emulator enforces, in one of three shapes: a sliding window (`limit` + `perMs`),
 * a calendar day (`limit` + `reset: 'utc-day'`) or concurrency (`concurrent`), each keyed by
 * `scope` (and `param` for the `query` scope).
 */
export type LimitRule = RuleCommon & RuleKeying & RuleShape;

export interface PlatformConfig {
  style: EmulatorStyle;
  /** Default answer delay for this platform (overrides the config-wide one). */
  latencyMs?: number;
  /** Calls per account per UTC day (resets at 00:00 UTC); overrides the config-wide one. */
  dailyQuota?: number;
}

export interface EmulatorConfig {
  /** Platform name (first path segment) → style. Unknown platforms use the generic style. */
  platforms: Record<string, PlatformConfig>;
  limits: LimitRule[];
  /** Default answer delay in ms (0 when absent); the `latency` query parameter overrides it. */
  latencyMs?: number;
  /** Calls per account per UTC day for every platform without its own `dailyQuota`. */
  dailyQuota?: number;
  /** When set, calls need `Authorization: Bearer <it>` or `access_token=<it>`, else 401. */
  requireBearer?: string;
}

export interface KeyStats {
  /** Arrivals for this scope key. */
  calls: number;
  /** Arrivals for this key that broke at least one of the key's limits. */
  violations: number;
  /** Smallest gap between two consecutive arrivals for this key (null before the second). */
  minGapMs: number | null;
}

export interface RuleStats {
  name: string;
  scope: LimitScope;
  platform: string | null;
  report: string | null;
  /** The query parameter of a `query` rule; null for the other scopes. */
  param: string | null;
  /** Calls per window or per day; null for concurrency rules. */
  limit: number | null;
  /** Window length; null for calendar-day and concurrency rules. */
  perMs: number | null;
  /** `utc-day` for calendar-day rules; null for the others. */
  reset: 'utc-day' | null;
  /** Calls in flight at once per key; null for window and calendar-day rules. */
  concurrent: number | null;
  /** Arrivals the rule judged (`query` rules: only those carrying the parameter). */
  calls: number;
  violations: number;
  /**
   * Concurrency rules: the most calls of one key in flight at once, refused ones included, so it
   * equals `concurrent` when a client used the whole allowance and is above it only with
   * violations. 0 for the other shapes.
   */
  maxInFlight: number;
}

export interface EmulatorStats {
  /** Every API call that arrived (control endpoints excluded). */
  calls: number;
  /** 2xx data pages served. */
  ok: number;
  /** Answers carrying a throttle or daily-quota signal (limits broken plus `throttle=1` faults). */
  throttled: number;
  /** Arrivals that broke at least one limit or a daily quota: must stay 0 for Prism. */
  violations: number;
  /** Arrivals over a daily quota or a `reset: 'utc-day'` rule (also counted in `violations`). */
  quotaExceeded: number;
  /** Injected faults (fail, hang, reset, badjson, throttle). */
  faults: number;
  unauthorized: number;
  /** Paths that are not `/{platform}/{account}/{report}`. */
  notFound: number;
  /** Calls with invalid emulator parameters or cursors. */
  badRequests: number;
  inFlight: number;
  maxInFlight: number;
  /** Scope key (see LimitScope; `account:…` is always present, also without limits) → figures. */
  byKey: Record<string, KeyStats>;
  byRule: RuleStats[];
  /** URL path → calls. */
  byPath: Record<string, number>;
  /** `${path}#${page}` (pages count from 1) → how many times that page was requested. */
  pageCalls: Record<string, number>;
  /** Every distinct request header name seen (lower case, sorted). */
  headerNames: string[];
  /** The last 1000 request URLs (path and query, as received), oldest first. */
  recentUrls: string[];
  /** When the counters were last reset (ISO time). */
  since: string;
  /** The emulator's largest event-loop delay since the last reset: its own timing error bound. */
  loopDelayMaxMs: number;
}

export interface EmulatorHandle {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  port: number;
  stats(): EmulatorStats;
  /**
   * Zeroes counters, limit windows, daily quotas and fault counters. Calls still in flight stay
   * in flight: they keep counting against concurrency rules until they end.
   */
  reset(): void;
  /**
   * Replaces the config (validated; throws EmulatorConfigError). Limit windows restart; calls in
   * flight count against the new concurrency rules.
   */
  setConfig(config: EmulatorConfig): void;
  config(): EmulatorConfig;
  /** Stops listening and destroys every connection, including hanging calls. */
  close(): Promise<void>;
}
