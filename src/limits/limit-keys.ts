import type { ApiConfig, LimitConfig, SourceConfig } from '../config/schema.ts';
import type { LimitCheck } from './ledger.ts';
import { DEFAULT_SCOPE } from './signals.ts';

export interface TemplateVars {
  source: string;
  api: string;
  account: string;
  node: string;
  meta: Record<string, unknown>;
}

/**
 * Fills a key template such as `{source}/{account}` or `{source}/{meta.app_id}`. Returns
 * undefined when a `{meta.x}` the template needs is missing from the job.
 */
export function resolveTemplate(template: string, vars: TemplateVars): string | undefined {
  let missing = false;
  const key = template.replace(/\{([a-z]+)(?:\.([A-Za-z0-9_]+))?\}/g, (_, name: string, field?: string) => {
    if (name === 'meta') {
      const value = field !== undefined ? vars.meta[field] : undefined;
      if (typeof value !== 'string' && typeof value !== 'number') {
        missing = true;
        return '';
      }
      return encodeURIComponent(String(value));
    }
    return encodeURIComponent(vars[name as 'source' | 'api' | 'account' | 'node']);
  });
  return missing ? undefined : key;
}

export type LimitChecksResult = { ok: true; checks: LimitCheck[] } | { ok: false; reason: string };

/** Every limit one call of this job must fit: the source's limits, then the api's. */
export function limitChecksFor(source: SourceConfig, api: ApiConfig, vars: TemplateVars): LimitChecksResult {
  const checks: LimitCheck[] = [];
  const all: LimitConfig[] = [...source.limits, ...api.limits];
  for (const limit of all) {
    const key = resolveTemplate(limit.key, vars);
    if (key === undefined)
      return { ok: false, reason: `limit key "${limit.key}" needs a field the job's meta lacks` };
    checks.push({
      // The window length is part of the ledger key: "1 per 5s" and "60 per 1h" on one scope are two logs.
      key: `${key}|${limit.reset === 'utc-day' ? 'day' : limit.per}`,
      limit: limit.limit,
      windowMs: limit.per,
      reset: limit.reset,
      weight: api.weight,
    });
  }
  return { ok: true, checks: mergeSameKey(checks) };
}

/** Two limits on the same scope and window: the stricter one wins (one log, smallest limit). */
function mergeSameKey(checks: LimitCheck[]): LimitCheck[] {
  const byKey = new Map<string, LimitCheck>();
  for (const check of checks) {
    const existing = byKey.get(check.key);
    if (existing === undefined || check.limit < existing.limit) byKey.set(check.key, check);
  }
  return [...byKey.values()];
}

/**
 * The scope keys whose pauses and slowdowns stop a job: its own key, its account, its source
 * (usage headers pause those), and every scope the source's signals name.
 */
export function pauseKeysFor(source: SourceConfig, vars: TemplateVars): string[] {
  const scopes = new Set([
    DEFAULT_SCOPE,
    '{source}/{account}',
    '{source}',
    ...source.signals.map((s) => s.scope),
  ]);
  return [...scopes].map((scope) => resolveTemplate(scope, vars)).filter((k): k is string => k !== undefined);
}
