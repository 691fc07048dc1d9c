import { randomBytes } from 'node:crypto';
import type { EmulatorStyle, LimitScope } from './types.ts';

/** One answer, ready to write. */
export interface EmuResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const JSON_TYPE = 'application/json; charset=UTF-8';

/** How full the call's limits are, for the usage headers some platforms send on every answer. */
export interface Usage {
  account: string;
  /** Share of the strictest applying window used, 0–100. */
  usedPct: number;
  /** Share used of app-wide windows only (X-App-Usage), 0–100; usedPct when absent. */
  appUsedPct?: number;
  /** Ms until every applying limit takes one more call (0 when they all would now). */
  retryAfterMs: number;
  /** The strictest applying limit; undefined when no limit applies. */
  strictest: { limit: number; remaining: number; resetInMs: number } | undefined;
}

export interface Throttle {
  /** `rate`: a sliding-window limit; `daily`: the account's calendar-day quota. */
  kind: 'rate' | 'daily';
  /** Ms until a call would be accepted again. */
  retryAfterMs: number;
  /** Scope of the broken limit (decides Meta's and Google's error details). */
  scope: LimitScope | undefined;
  /** Error code from the rule (Meta, TikTok). */
  code: number | undefined;
}

const TRACE_PREFIX = randomBytes(6).toString('base64url');
let traceSeq = 0;

/** Unique per answer, cheap (no entropy per call): platforms put one in every error. */
function traceId(): string {
  traceSeq = (traceSeq + 1) % 0x7fffffff;
  return `${TRACE_PREFIX}${traceSeq.toString(36).padStart(6, '0')}`;
}

/** Whole seconds, rounded up and at least 1: a client waiting this long will get through. */
export function ceilSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): EmuResponse {
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, body: JSON.stringify(body) };
}

const META_MESSAGES: Record<number, string> = {
  4: '(#4) Application request limit reached',
  17: '(#17) User request limit reached',
  32: '(#32) Page request limit reached',
  613: '(#613) Calls to this api have exceeded the rate limit.',
};

function metaMessage(code: number): string {
  if (code >= 80000 && code <= 80014) {
    return (
      `(#${code}) There have been too many calls from this ad-account. Wait a bit and try again. ` +
      'For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.'
    );
  }
  return META_MESSAGES[code] ?? `(#${code}) Rate limit reached`;
}

function isAppWide(scope: LimitScope | undefined): boolean {
  return scope === 'platform' || scope === 'platform-report' || scope === 'ip';
}

/** Headers every answer of the style carries (Meta's usage headers, the IETF RateLimit fields). */
export function usageHeaders(style: EmulatorStyle, usage: Usage): Record<string, string> {
  if (style === 'meta') {
    const p = usage.usedPct;
    const regainMinutes = usage.retryAfterMs > 0 ? Math.ceil(usage.retryAfterMs / 60_000) : 0;
    const resetS = usage.strictest === undefined ? 0 : Math.ceil(usage.strictest.resetInMs / 1000);
    return {
      'x-business-use-case-usage': JSON.stringify({
        [usage.account]: [
          {
            type: 'ads_insights',
            call_count: p,
            total_cputime: p,
            total_time: p,
            estimated_time_to_regain_access: regainMinutes,
          },
        ],
      }),
      'x-ad-account-usage': JSON.stringify({
        acc_id_util_pct: p,
        reset_time_duration: resetS,
        ads_api_access_tier: 'standard_access',
      }),
      'x-app-usage': JSON.stringify({
        call_count: usage.appUsedPct ?? p,
        total_time: usage.appUsedPct ?? p,
        total_cputime: usage.appUsedPct ?? p,
      }),
    };
  }
  if (style === 'generic' && usage.strictest !== undefined) {
    return {
      'ratelimit-limit': String(usage.strictest.limit),
      'ratelimit-remaining': String(usage.strictest.remaining),
      'ratelimit-reset': String(Math.ceil(usage.strictest.resetInMs / 1000)),
    };
  }
  return {};
}

/** The platform's own "too many calls" answer. */
export function throttleResponse(style: EmulatorStyle, throttle: Throttle): EmuResponse {
  const seconds = ceilSeconds(throttle.retryAfterMs);
  const daily = throttle.kind === 'daily';
  switch (style) {
    case 'meta': {
      const code = throttle.code ?? (daily ? 80000 : isAppWide(throttle.scope) ? 4 : 17);
      return json(400, {
        error: {
          message: metaMessage(code),
          type: 'OAuthException',
          is_transient: true,
          code,
          error_subcode: 2446079,
          fbtrace_id: traceId(),
        },
      });
    }
    case 'tiktok':
      return json(200, {
        code: throttle.code ?? 40100,
        message: daily
          ? 'Too many requests. The daily request limit of this advertiser has been reached.'
          : 'Too many requests. Please retry in some time.',
        request_id: traceId(),
        data: {},
      });
    case 'google': {
      const scope = throttle.scope === undefined || !isAppWide(throttle.scope) ? 'ACCOUNT' : 'DEVELOPER';
      return json(429, {
        error: {
          code: 429,
          message: 'Resource has been exhausted (e.g. check quota).',
          status: 'RESOURCE_EXHAUSTED',
          details: [
            {
              '@type': 'type.googleapis.com/google.ads.googleads.v17.errors.GoogleAdsFailure',
              errors: [
                {
                  errorCode: { quotaError: 'RESOURCE_EXHAUSTED' },
                  message: `Too many requests. Retry in ${seconds} seconds.`,
                  details: {
                    quotaErrorDetails: {
                      rateScope: daily ? 'ACCOUNT' : scope,
                      rateName: daily ? 'Number of operations per day' : 'Number of requests per period',
                      retryDelay: `${seconds}s`,
                    },
                  },
                },
              ],
              requestId: traceId(),
            },
          ],
        },
      });
    }
    case 'naver':
      return json(429, { code: 1016, title: 'Too many requests' }, { 'retry-after': String(seconds) });
    case 'kakao':
      return json(429, { code: -10, msg: 'API limit exceeded' }, { 'retry-after': String(seconds) });
    case 'generic':
      return json(
        429,
        { error: 'too_many_requests', message: daily ? 'Daily quota exceeded' : 'Rate limit exceeded' },
        { 'retry-after': String(seconds) },
      );
  }
}

export function unauthorizedResponse(style: EmulatorStyle): EmuResponse {
  switch (style) {
    case 'meta':
      return json(401, {
        error: {
          message: 'Invalid OAuth access token - Cannot parse access token',
          type: 'OAuthException',
          code: 190,
          fbtrace_id: traceId(),
        },
      });
    case 'tiktok':
      return json(401, {
        code: 40105,
        message: 'The access token is invalid or has been revoked.',
        request_id: traceId(),
        data: {},
      });
    case 'google':
      return json(401, {
        error: {
          code: 401,
          message: 'Request is missing required authentication credential.',
          status: 'UNAUTHENTICATED',
        },
      });
    case 'naver':
      return json(401, { code: 1002, title: 'Unauthorized' });
    case 'kakao':
      return json(401, { code: -401, msg: 'this access token does not exist' });
    case 'generic':
      return json(401, { error: 'unauthorized', message: 'Missing or invalid bearer token' });
  }
}

/** An injected server error (`fail=STATUS`); 4xx/5xx with a body in the style's error shape. */
export function failResponse(style: EmulatorStyle, status: number): EmuResponse {
  const message = `Emulated failure (HTTP ${status})`;
  switch (style) {
    case 'meta':
      return json(status, {
        error: { message, type: 'OAuthException', is_transient: true, code: 2, fbtrace_id: traceId() },
      });
    case 'tiktok':
      return json(status, { code: 50000, message, request_id: traceId(), data: {} });
    case 'google':
      return json(status, {
        error: { code: status, message, status: status >= 500 ? 'INTERNAL' : 'UNKNOWN' },
      });
    case 'naver':
      return json(status, { code: 5000, title: message });
    case 'kakao':
      return json(status, { code: -1, msg: message });
    case 'generic':
      return json(status, { error: 'emulated_failure', message });
  }
}

export function badRequestResponse(style: EmulatorStyle, message: string): EmuResponse {
  switch (style) {
    case 'meta':
      return json(400, {
        error: { message: `(#100) ${message}`, type: 'OAuthException', code: 100, fbtrace_id: traceId() },
      });
    case 'tiktok':
      return json(400, { code: 40002, message, request_id: traceId(), data: {} });
    case 'google':
      return json(400, { error: { code: 400, message, status: 'INVALID_ARGUMENT' } });
    case 'naver':
      return json(400, { code: 1001, title: message });
    case 'kakao':
      return json(400, { code: -2, msg: message });
    case 'generic':
      return json(400, { error: 'bad_request', message });
  }
}

export function notFoundResponse(path: string): EmuResponse {
  return json(404, { error: 'not_found', message: `expected /{platform}/{account}/{report}, got ${path}` });
}

/** `badjson=1`: a 200 that claims JSON and is cut off mid-way, like a truncated upstream answer. */
export function badJsonResponse(): EmuResponse {
  return { status: 200, headers: { 'content-type': JSON_TYPE }, body: '{"data":[{"id":"1","spend":' };
}
