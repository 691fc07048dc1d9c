import type { ApiConfig, LimitConfig, SourceConfig } from '../config/schema.ts';
import type { LimitCheck } from './ledger.ts';
import { allIn, asciiTable } from '../messages/subject.ts';
import { DEFAULT_SCOPE } from './signals.ts';

/** What encodeURIComponent leaves as it is: most ids, which then cost no copy and no call. */
export const URI_UNRESERVED = asciiTable("A-Za-z0-9_.!~*'()-");
const encodePart = (value: string): string =>
  allIn(value, URI_UNRESERVED) ? value : encodeURIComponent(value);

export interface TemplateVars {
  source: string;
  api: string;
  account: string;
  node: string;
  meta: Record<string, unknown>;
}

/**
 * A job's template variables on `node`: five fields picked, not the job spread into a copy
 * (the router fills them for every job; a spread of the whole job cost ~0.4 µs, bench/throttle).
 */
export const templateVars = (
  job: { source: string; api: string; account: string; meta: Record<string, unknown> },
  node: string,
): TemplateVars => ({ source: job.source, api: job.api, account: job.account, node, meta: job.meta });

/** A template cut into literal text and the variables between it, once per template. */
type TemplatePart = string | { name: string; field: string | undefined };
const compiledTemplates = new Map<string, TemplatePart[]>();

function compile(template: string): TemplatePart[] {
  let parts = compiledTemplates.get(template);
  if (parts !== undefined) return parts;
  parts = [];
  let last = 0;
  for (const match of template.matchAll(/\{([a-z]+)(?:\.([A-Za-z0-9_]+))?\}/g)) {
    if (match.index > last) parts.push(template.slice(last, match.index));
    parts.push({ name: match[1] as string, field: match[2] });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  // Templates come from the config (and signal scopes from it): a bounded set.
  compiledTemplates.set(template, parts);
  return parts;
}

/**
 * Fills a key template such as `{source}/{account}` or `{source}/{meta.app_id}`. Returns
 * undefined when a `{meta.x}` the template needs is missing from the job. (The router fills
 * several per job, so templates are parsed once, not matched by a regular expression each time.)
 */
export function resolveTemplate(template: string, vars: TemplateVars): string | undefined {
  let key = '';
  for (const part of compile(template)) {
    if (typeof part === 'string') {
      key += part;
      continue;
    }
    if (part.name === 'meta') {
      const value = part.field !== undefined ? vars.meta[part.field] : undefined;
      if (typeof value !== 'string' && typeof value !== 'number') return undefined;
      key += encodePart(String(value));
    } else key += encodePart(vars[part.name as 'source' | 'api' | 'account' | 'node']);
  }
  return key;
}

export type LimitChecksResult = { ok: true; checks: LimitCheck[] } | { ok: false; reason: string };

/** Every limit one call of this job must fit: the source's limits, then the api's. */
export function limitChecksFor(source: SourceConfig, api: ApiConfig, vars: TemplateVars): LimitChecksResult {
  // Sized up front: an array grown by push from empty keeps room for 17 entries (152 B), and a
  // key holds its checks for as long as it has jobs (100,000 keys: ~13 MB of empty room).
  const checks = new Array<LimitCheck>(source.limits.length + api.limits.length);
  let at = 0;
  for (const limits of [source.limits, api.limits])
    for (const limit of limits) {
      const key = resolveTemplate(limit.key, vars);
      if (key === undefined)
        return { ok: false, reason: `limit key "${limit.key}" needs a field the job's meta lacks` };
      checks[at++] = checkOf(limit, key, api.weight);
    }
  return { ok: true, checks: checks.length > 1 ? mergeSameKey(checks) : checks };
}

/** What follows a limit's scope in its ledger key, made once per limit of the config. */
const keySuffixes = new WeakMap<LimitConfig, string>();

/**
 * The shape is part of the ledger key: "1 per 5s" and "60 per 1h" on one scope are two logs.
 * The key is joined into one flat string: built with `+` it is a chain of 3 concatenations
 * over 2 more strings (5 heap objects, ~180 B), and a key's first check keys its ledger log for
 * as long as the ledger keeps it, passivated keys included.
 */
function ledgerKeyOf(limit: LimitConfig, scope: string): string {
  let suffix = keySuffixes.get(limit);
  if (suffix === undefined) {
    suffix = `|${limit.kind === 'concurrent' ? 'in-flight' : limit.kind === 'utc-day' ? 'day' : limit.per}`;
    keySuffixes.set(limit, suffix);
  }
  return [scope, suffix].join('');
}

/** The ledger's check for one limit of the config, on its resolved scope key. */
function checkOf(limit: LimitConfig, scope: string, weight: number): LimitCheck {
  if (limit.kind === 'concurrent')
    // A place in flight is a place, whatever the call costs in quota.
    return {
      key: ledgerKeyOf(limit, scope),
      kind: 'concurrent',
      limit: limit.concurrent,
      windowMs: 0,
      weight: 1,
      ledgerMemo: undefined,
    };
  return {
    key: ledgerKeyOf(limit, scope),
    kind: limit.kind,
    limit: limit.limit,
    windowMs: limit.per,
    weight,
    ledgerMemo: undefined,
  };
}

/** Two limits on the same scope and window: the stricter one wins (one log, smallest limit). */
function mergeSameKey(checks: LimitCheck[]): LimitCheck[] {
  const byKey = new Map<string, LimitCheck>();
  for (const check of checks) {
    const existing = byKey.get(check.key);
    if (existing === undefined || check.limit < existing.limit) byKey.set(check.key, check);
  }
  const merged = new Array<LimitCheck>(byKey.size);
  let at = 0;
  for (const check of byKey.values()) merged[at++] = check;
  return merged;
}

/**
 * The scope keys whose pauses and slowdowns stop a job: its own key, its account, its source
 * (usage headers pause those), and every scope the source's signals name.
 */
export function pauseKeysFor(source: SourceConfig, vars: TemplateVars): string[] {
  let scopes = pauseScopes.get(source);
  if (scopes === undefined) {
    scopes = [
      ...new Set([DEFAULT_SCOPE, '{source}/{account}', '{source}', ...source.signals.map((s) => s.scope)]),
    ];
    pauseScopes.set(source, scopes);
  }
  const keys: string[] = [];
  for (const scope of scopes) {
    const key = resolveScope(scope, source, vars);
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

/**
 * The key a pause or slowdown of scope `template` stops for this job. The default scope is the
 * job's own throttle key, so it takes the job's lane too (see laneOf): a 429 or RateLimit
 * headers about one app's quota stop that app's line, not every app of the account.
 */
export function resolveScope(template: string, source: SourceConfig, vars: TemplateVars): string | undefined {
  const key = resolveTemplate(template, vars);
  return key !== undefined && template === DEFAULT_SCOPE ? key + laneOf(source, vars.meta) : key;
}

/** The scope templates of each source's pauses (the same for every job of the source). */
const pauseScopes = new WeakMap<SourceConfig, string[]>();

/**
 * What sets a job's throttle key apart beyond its source, api and account: the job's values of
 * the `{meta.<field>}` fields that the source's limits and signal scopes name, as `/field=value`
 * (empty for sources that name none). With AppsFlyer's "1 call per minute per app per report",
 * the apps of one account each get their own throttle actor and line, so one app waiting for its
 * minute holds up no other app of the account.
 */
export function laneOf(source: SourceConfig, meta: Record<string, unknown>): string {
  let fields = laneFields.get(source);
  if (fields === undefined) {
    const templates = [...source.limits.map((l) => l.key), ...source.signals.map((s) => s.scope)];
    for (const api of Object.values(source.apis)) templates.push(...api.limits.map((l) => l.key));
    fields = [
      ...new Set(
        templates.flatMap((t) => [...t.matchAll(/\{meta\.([A-Za-z0-9_]+)\}/g)].map((m) => m[1] as string)),
      ),
    ];
    laneFields.set(source, fields);
  }
  let lane = '';
  for (const field of fields) {
    const value = meta[field];
    if (typeof value === 'string' || typeof value === 'number')
      lane += `/${field}=${encodePart(String(value))}`;
  }
  return lane;
}

/** The `{meta.<field>}` fields each source's limits and signals name. */
const laneFields = new WeakMap<SourceConfig, string[]>();
