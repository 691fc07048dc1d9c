import { decodeCursor, MAX_PAGE } from './cursor.ts';
import type { EmulatorStyle } from './types.ts';

/**
 * Query parameters that script one call's behaviour, so a test can put a whole scenario into a
 * job's URL. Everything else in the query is left alone (and echoed into `next` URLs).
 */
export interface CallParams {
  /** Total pages of this report (`pages`, default 1). */
  pages: number;
  /** Rows per page (`rows`, default 10). */
  rows: number;
  /** Pad each page to about this many bytes (`size`, default 0 = no padding). */
  size: number;
  /** Answer delay (`latency`); undefined = the platform's or config's default. */
  latencyMs: number | undefined;
  /** Extra random delay in [0, jitter) ms (`jitter`, default 0). */
  jitterMs: number;
  /** Answer this status instead of data (`fail`, 400–599). */
  fail: number | undefined;
  /** Faults hit only the first N calls of a fault key (`failTimes`); every call when absent. */
  failTimes: number;
  /** Faults hit only this page (`failPage`, from 1). */
  failPage: number | undefined;
  /** Never answer (`hang=1`). */
  hang: boolean;
  /** Destroy the connection (`reset=1`). */
  reset: boolean;
  /** Answer 200 with a body that is not JSON (`badjson=1`). */
  badjson: boolean;
  /** Answer the platform's throttle signal although no limit is broken (`throttle=1`). */
  throttle: boolean;
  /** Retry delay announced by `throttle=1` (`retryAfter` in ms, default 1000). */
  retryAfterMs: number;
  /**
   * The code `throttle=1` answers with, for styles that carry one (`throttleCode`): Meta's 4 (the
   * app's limit) instead of 17, TikTok's own codes; the style's default when absent.
   */
  throttleCode: number | undefined;
  /** Groups calls for `failTimes` (`faultKey`); the full URL when absent. */
  faultKey: string | undefined;
}

export class CallParamError extends Error {
  override name = 'CallParamError';
}

export const MAX_ROWS = 100_000;
export const MAX_SIZE = 256 * 1024 * 1024;
export const MAX_LATENCY_MS = 600_000;

function int(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,15}$/.test(raw)) throw new CallParamError(`${name} must be a non-negative integer`);
  const value = Number(raw);
  if (value < min || value > max) throw new CallParamError(`${name} must be between ${min} and ${max}`);
  return value;
}

/** An optional integer that may be negative (Kakao's -10). */
function signedInt(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  if (!/^-?\d{1,9}$/.test(raw)) throw new CallParamError(`${name} must be an integer`);
  return Number(raw);
}

function flag(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true' || raw === '') return true;
  throw new CallParamError(`${name} must be 1 or 0`);
}

export function parseCallParams(query: URLSearchParams): CallParams {
  const failRaw = query.get('fail');
  const failPageRaw = query.get('failPage');
  const latencyRaw = query.get('latency');
  return {
    pages: int(query, 'pages', 1, 1, MAX_PAGE),
    rows: int(query, 'rows', 10, 0, MAX_ROWS),
    size: int(query, 'size', 0, 0, MAX_SIZE),
    latencyMs: latencyRaw === null ? undefined : int(query, 'latency', 0, 0, MAX_LATENCY_MS),
    jitterMs: int(query, 'jitter', 0, 0, MAX_LATENCY_MS),
    fail: failRaw === null ? undefined : int(query, 'fail', 500, 400, 599),
    failTimes: query.get('failTimes') === null ? Infinity : int(query, 'failTimes', 0, 0, 1e9),
    failPage: failPageRaw === null ? undefined : int(query, 'failPage', 1, 1, MAX_PAGE),
    hang: flag(query, 'hang'),
    reset: flag(query, 'reset'),
    badjson: flag(query, 'badjson'),
    throttle: flag(query, 'throttle'),
    retryAfterMs: int(query, 'retryAfter', 1000, 0, 86_400_000),
    throttleCode: signedInt(query, 'throttleCode'),
    faultKey: query.get('faultKey') ?? undefined,
  };
}

/** How a style pages: Meta by `after` cursor, TikTok by `page` number, the rest by `cursor`. */
export type PageStyle = 'meta' | 'tiktok' | 'generic';

export function pageStyleOf(style: EmulatorStyle): PageStyle {
  return style === 'meta' || style === 'tiktok' ? style : 'generic';
}

/** The query parameter that selects a page in each page style. */
export function pageParamOf(pageStyle: PageStyle): string {
  return pageStyle === 'meta' ? 'after' : pageStyle === 'tiktok' ? 'page' : 'cursor';
}

/** The page (from 1) a call asks for; throws CallParamError for a cursor that is not ours. */
export function requestedPage(pageStyle: PageStyle, query: URLSearchParams): number {
  const raw = query.get(pageParamOf(pageStyle));
  if (raw === null) return 1;
  if (pageStyle === 'tiktok') {
    if (!/^\d{1,8}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_PAGE) {
      throw new CallParamError('page must be an integer ≥ 1');
    }
    return Number(raw);
  }
  const page = decodeCursor(raw);
  if (page === undefined) throw new CallParamError(`invalid cursor: ${raw.slice(0, 64)}`);
  return page;
}
