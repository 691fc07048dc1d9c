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
 * Which arrivals share a window:
 * - `account`: one platform account across all its reports (`account:meta/act_1`)
 * - `account-report`: one report of one account (`account-report:meta/act_1/insights`)
 * - `platform`: the whole platform, i.e. the app/developer token (`platform:meta`)
 * - `platform-report`: one report across all accounts (`platform-report:meta/insights`)
 * - `ip`: the caller's address, per platform (`ip:meta/127.0.0.1`)
 */
export type LimitScope = 'account' | 'platform' | 'platform-report' | 'account-report' | 'ip';

export const LIMIT_SCOPES: readonly LimitScope[] = [
  'account',
  'platform',
  'platform-report',
  'account-report',
  'ip',
];

/** At most `limit` arrivals in any window of `perMs` for each key of `scope`. */
export interface LimitRule {
  scope: LimitScope;
  /** Only for this platform; every platform (each with its own keys) when absent. */
  platform?: string;
  /** Only for this report (last path segment); every report when absent. */
  report?: string;
  /** Integer ≥ 1. */
  limit: number;
  /** Window length in milliseconds (> 0). */
  perMs: number;
  /**
   * Error code of the throttle signal for styles that carry one: Meta (default 17 for account
   * scopes, 4 for app-wide scopes; e.g. 80000 for business-use-case limits, 613) and TikTok
   * (default 40100).
   */
  code?: number;
  /** Label in stats; defaults to `scope[:platform][/report] limit/perMs`. */
  name?: string;
}

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
  limit: number;
  perMs: number;
  calls: number;
  violations: number;
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
  /** Arrivals over a daily quota (also counted in `violations`). */
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
  /** Zeroes counters, limit windows, daily quotas and fault counters. */
  reset(): void;
  /** Replaces the config (validated; throws EmulatorConfigError). Limit windows restart. */
  setConfig(config: EmulatorConfig): void;
  config(): EmulatorConfig;
  /** Stops listening and destroys every connection, including hanging calls. */
  close(): Promise<void>;
}
