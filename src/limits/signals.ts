import type { SignalConfig } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { readPath } from './json-path.ts';
import { nextUtcMidnight } from './window-log.ts';

export interface ResponseView {
  status: number;
  headers: Record<string, string>;
  /** The parsed body when it is JSON. */
  json: unknown;
  bodyText: () => string;
}

/** What a response means for the job and for its key. */
export type CallOutcome =
  | { kind: 'ok' }
  | {
      kind: 'throttled';
      signal: string;
      scope: string;
      until: number;
      reason: string;
      /** Slow the scope down instead of pausing it (the signal's `slow` action). */
      slow?: { intervalMs: number | undefined; factor: number };
    }
  | { kind: 'retry'; reason: string; notBefore?: number }
  | { kind: 'reject'; reason: string };

export const DEFAULT_SCOPE = '{source}/{api}/{account}';
/** With no Retry-After, a throttled key waits this long before trying again. */
export const DEFAULT_PAUSE_MS = 5_000;

/**
 * Classifies a response: the source's own throttle signals first (Meta answers 400 with
 * error.code 17, TikTok 200 with code 40100), then HTTP's (429 and Retry-After), then errors.
 */
export function classifyResponse(
  response: ResponseView,
  signals: readonly SignalConfig[],
  now: number,
): CallOutcome {
  for (const signal of signals) {
    if (!matches(signal, response)) continue;
    const hinted = retryAfter(response.headers, now);
    let until: number;
    switch (signal.action.type) {
      case 'pause': {
        // The delay the platform wrote in its body, else the configured one, else Retry-After.
        const own =
          signal.action.delayPath !== undefined
            ? delayFromBody(response.json, signal.action.delayPath)
            : undefined;
        if (own !== undefined) until = now + own;
        else if (signal.action.for !== undefined) until = now + signal.action.for;
        else until = hinted ?? now + DEFAULT_PAUSE_MS;
        break;
      }
      case 'pause-until':
        until = nextUtcMidnight(now);
        break;
      case 'slow':
        // As with a pause, the configured length wins over the platform's Retry-After.
        until =
          signal.action.for !== undefined ? now + signal.action.for : (hinted ?? now + DEFAULT_PAUSE_MS);
        break;
    }
    const outcome: CallOutcome = {
      kind: 'throttled',
      signal: signal.name,
      scope: signal.scope,
      until,
      reason: `${signal.name} (HTTP ${response.status})`,
    };
    if (signal.action.type === 'slow')
      outcome.slow = { intervalMs: signal.action.interval, factor: signal.action.factor };
    return outcome;
  }
  const { status } = response;
  if (status === 429) {
    const until = retryAfter(response.headers, now) ?? now + DEFAULT_PAUSE_MS;
    return {
      kind: 'throttled',
      signal: 'http-429',
      scope: DEFAULT_SCOPE,
      until,
      reason: 'HTTP 429 Too Many Requests',
    };
  }
  if (status >= 200 && status < 300) return { kind: 'ok' };
  if (status >= 500 || status === 408) {
    const notBefore = retryAfter(response.headers, now);
    return notBefore === undefined
      ? { kind: 'retry', reason: `HTTP ${status}` }
      : { kind: 'retry', reason: `HTTP ${status}`, notBefore };
  }
  if (status >= 300 && status < 400) {
    return {
      kind: 'reject',
      reason: `HTTP ${status} redirect not followed (jobs only reach their allowHosts)`,
    };
  }
  return { kind: 'reject', reason: `HTTP ${status}: ${excerpt(response.bodyText())}` };
}

/** A delay the platform wrote in its body: seconds as a number, or a duration such as "5s". */
function delayFromBody(json: unknown, path: string): number | undefined {
  const value = readPath(json, path);
  if (typeof value === 'number' && value >= 0) return value * 1000;
  if (typeof value !== 'string') return undefined;
  try {
    return parseDuration(value);
  } catch {
    return undefined;
  }
}

function matches(signal: SignalConfig, response: ResponseView): boolean {
  const { match } = signal;
  if (match.status !== undefined) {
    const statuses = Array.isArray(match.status) ? match.status : [match.status];
    if (!statuses.includes(response.status)) return false;
  }
  if (match.header !== undefined && response.headers[match.header.toLowerCase()] === undefined) return false;
  if (match.body !== undefined) {
    const value = readPath(response.json, match.body.path);
    if (value === undefined) return false;
    const hit = match.body.in.some((want) =>
      Array.isArray(want)
        ? typeof value === 'number' && value >= want[0] && value <= want[1]
        : String(want) === String(value),
    );
    if (!hit) return false;
  }
  return match.status !== undefined || match.header !== undefined || match.body !== undefined;
}

/** Retry-After (seconds or an HTTP date), else RateLimit-Reset / X-RateLimit-Reset, as a time. */
export function retryAfter(headers: Record<string, string>, now: number): number | undefined {
  const value = headers['retry-after'];
  if (value !== undefined) {
    if (/^\d+(\.\d+)?$/.test(value.trim())) return now + Number(value) * 1000;
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(now, date);
  }
  const reset = headers['ratelimit-reset'] ?? headers['x-ratelimit-reset'];
  if (reset !== undefined && /^\d+(\.\d+)?$/.test(reset.trim())) {
    const n = Number(reset);
    // Some APIs send seconds to wait, others an epoch time in seconds.
    return n > 1_000_000_000 ? Math.max(now, n * 1000) : now + n * 1000;
  }
  return undefined;
}

const SECRETISH = /((?:access_token|token|api_key|apikey|key|secret|password|signature)=)[^&\s"']+/gi;

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').replace(SECRETISH, '$1REDACTED');
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}
