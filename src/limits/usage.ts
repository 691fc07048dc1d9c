import type { UsageConfig } from '../config/schema.ts';
import { DEFAULT_SCOPE } from './signals.ts';

/** What a platform's usage headers advise for a scope: pause it, slow it, or nothing. */
export type UsageAdvice =
  | { action: 'pause'; scope: string; until: number; reason: string }
  | { action: 'slow'; scope: string; until: number; intervalMs: number; reason: string };

interface MetaUsage {
  call_count?: number;
  total_cputime?: number;
  total_time?: number;
  acc_id_util_pct?: number;
  estimated_time_to_regain_access?: number;
  reset_time_duration?: number;
}

/**
 * Reads the usage a platform reports on every answer, so a key slows down before it hits the
 * wall. Meta's quotas change with the account's active ads and are visible only in
 * `X-Business-Use-Case-Usage` / `X-Ad-Account-Usage` (the account) and `X-App-Usage` (the app):
 * percentages used, minutes until access returns, seconds until the window resets. Every source
 * also honours the RateLimit headers (see rateLimitHeaders): a key pauses until the reset when
 * nothing remains, and slows down to spread the last quarter of its quota to the reset.
 */
export function usageAdvice(
  headers: Record<string, string>,
  usage: UsageConfig | undefined,
  now: number,
): UsageAdvice[] {
  const advice: UsageAdvice[] = [];
  const quota = rateLimitHeaders(headers, now);
  if (quota !== undefined && quota.resetAt > now) {
    // The job's own key: what the headers count is not named, so the call's own line waits.
    const scope = DEFAULT_SCOPE;
    if (quota.remaining <= 0)
      advice.push({ action: 'pause', scope, until: quota.resetAt, reason: 'RateLimit-Remaining is 0' });
    else if (quota.limit !== undefined && quota.remaining <= quota.limit * NEARLY_SPENT)
      // Nearly spent: spread what is left over the time to the reset instead of spending it at
      // once and then waiting (several nodes calling at once would overshoot the last few).
      advice.push({
        action: 'slow',
        scope,
        until: quota.resetAt,
        intervalMs: Math.ceil((quota.resetAt - now) / quota.remaining),
        reason: `RateLimit-Remaining ${quota.remaining} of ${quota.limit}`,
      });
  }
  if (usage?.kind !== 'meta') return advice;
  const account: MetaUsage[] = [];
  const business = parseJson(headers['x-business-use-case-usage']);
  if (business !== null && typeof business === 'object') {
    for (const list of Object.values(business as Record<string, unknown>)) {
      if (Array.isArray(list))
        for (const item of list)
          if (item !== null && typeof item === 'object') account.push(item as MetaUsage);
    }
  }
  const adAccount = parseJson(headers['x-ad-account-usage']);
  if (adAccount !== null && typeof adAccount === 'object') account.push(adAccount as MetaUsage);
  const app = parseJson(headers['x-app-usage']);
  const scopes: Array<[string, MetaUsage[]]> = [['{source}/{account}', account]];
  if (app !== null && typeof app === 'object') scopes.push(['{source}', [app as MetaUsage]]);
  for (const [scope, items] of scopes) {
    if (items.length === 0) continue;
    let pct = 0;
    let regainMs = 0;
    let resetMs = 0;
    for (const item of items) {
      pct = Math.max(
        pct,
        num(item.call_count),
        num(item.total_cputime),
        num(item.total_time),
        num(item.acc_id_util_pct),
      );
      regainMs = Math.max(regainMs, num(item.estimated_time_to_regain_access) * 60_000);
      resetMs = Math.max(resetMs, num(item.reset_time_duration) * 1000);
    }
    if (regainMs > 0) {
      advice.push({
        action: 'pause',
        scope,
        until: now + regainMs,
        reason: `Meta usage: access returns in ${regainMs / 60_000} min`,
      });
    } else if (pct >= usage.pauseAt) {
      advice.push({
        action: 'pause',
        scope,
        until: now + (resetMs || usage.slowFor),
        reason: `Meta usage ${pct}% (pause at ${usage.pauseAt}%)`,
      });
    } else if (pct >= usage.slowAt) {
      // The closer to the wall, the slower: the interval doubles every 5 points above slowAt.
      const intervalMs = usage.slowInterval * 2 ** Math.floor((pct - usage.slowAt) / 5);
      advice.push({
        action: 'slow',
        scope,
        until: now + usage.slowFor,
        intervalMs,
        reason: `Meta usage ${pct}% (slow at ${usage.slowAt}%)`,
      });
    }
  }
  return advice;
}

/** From this share of a window's quota left, the calls that remain are spread to its reset. */
const NEARLY_SPENT = 0.25;

/** What a platform's rate-limit headers say is left of its window, and when the window resets. */
export interface QuotaLeft {
  remaining: number;
  limit: number | undefined;
  resetAt: number;
}

/**
 * Reads the IETF RateLimit headers in their three forms — separate `RateLimit-Limit` /
 * `-Remaining` / `-Reset` (draft 03–06), one `RateLimit: limit=10, remaining=5, reset=4`
 * (draft 07), and `RateLimit: "default";r=5;t=4` with `RateLimit-Policy: "default";q=10;w=1`
 * (draft 08 on) — and the common `X-RateLimit-*`. Reset is seconds to wait, or an epoch time in
 * seconds as some APIs send it. Undefined when remaining or reset is missing or malformed.
 */
export function rateLimitHeaders(headers: Record<string, string>, now: number): QuotaLeft | undefined {
  let remaining = numberOf(headers['ratelimit-remaining'] ?? headers['x-ratelimit-remaining']);
  let reset = numberOf(headers['ratelimit-reset'] ?? headers['x-ratelimit-reset']);
  let limit = numberOf(headers['ratelimit-limit'] ?? headers['x-ratelimit-limit']);
  const combined = headers['ratelimit'];
  if (combined !== undefined) {
    const fields = parameters(combined);
    remaining ??= numberOf(fields.get('remaining') ?? fields.get('r'));
    reset ??= numberOf(fields.get('reset') ?? fields.get('t'));
    limit ??= numberOf(fields.get('limit'));
  }
  const policy = headers['ratelimit-policy'];
  if (limit === undefined && policy !== undefined)
    limit = numberOf(parameters(policy).get('q') ?? policy.split(/[;,]/)[0]);
  if (remaining === undefined || reset === undefined) return undefined;
  const resetAt = reset > 1_000_000_000 ? reset * 1000 : now + reset * 1000;
  return { remaining, limit, resetAt };
}

/** `a=1, b=2` and `"name";r=1;t=2` alike: every `key=value` of a header, first one wins. */
function parameters(header: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of header.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!fields.has(key)) fields.set(key, part.slice(eq + 1).trim());
  }
  return fields;
}

/** A non-negative number written as digits (with an optional fraction), else undefined. */
function numberOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  return /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : undefined;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
