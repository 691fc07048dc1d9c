import type { UsageConfig } from '../config/schema.ts';

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
 * also honours `RateLimit-Remaining: 0` / `X-RateLimit-Remaining: 0` until `…-Reset`.
 */
export function usageAdvice(
  headers: Record<string, string>,
  usage: UsageConfig | undefined,
  now: number,
): UsageAdvice[] {
  const advice: UsageAdvice[] = [];
  const remaining = headers['ratelimit-remaining'] ?? headers['x-ratelimit-remaining'];
  const reset = headers['ratelimit-reset'] ?? headers['x-ratelimit-reset'];
  if (
    remaining !== undefined &&
    Number(remaining) <= 0 &&
    reset !== undefined &&
    /^\d+(\.\d+)?$/.test(reset.trim())
  ) {
    const n = Number(reset);
    const until = n > 1_000_000_000 ? n * 1000 : now + n * 1000;
    if (until > now)
      advice.push({
        action: 'pause',
        scope: '{source}/{api}/{account}',
        until,
        reason: 'RateLimit-Remaining is 0',
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

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
