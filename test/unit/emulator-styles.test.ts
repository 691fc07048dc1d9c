import { describe, expect, it } from 'vitest';
import {
  badJsonResponse,
  badRequestResponse,
  ceilSeconds,
  failResponse,
  throttleResponse,
  unauthorizedResponse,
  usageHeaders,
} from '../../src/emulator/styles.ts';
import type { Throttle } from '../../src/emulator/styles.ts';
import { EMULATOR_STYLES } from '../../src/emulator/types.ts';

const rate: Throttle = { kind: 'rate', retryAfterMs: 4200, scope: 'account', code: undefined };

function body(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>;
}

describe('throttle signals', () => {
  it('generic: 429 with Retry-After in whole seconds, rounded up', () => {
    const r = throttleResponse('generic', rate);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('5');
    expect(throttleResponse('generic', { ...rate, retryAfterMs: 0.2 }).headers['retry-after']).toBe('1');
  });

  it('meta: 400 OAuthException code 17 / 2446079; 4 for app-wide scopes; rule codes win', () => {
    const r = throttleResponse('meta', rate);
    expect(r.status).toBe(400);
    const error = body(r.body).error as Record<string, unknown>;
    expect(error).toMatchObject({
      message: '(#17) User request limit reached',
      type: 'OAuthException',
      code: 17,
      error_subcode: 2446079,
    });
    expect(typeof error.fbtrace_id).toBe('string');
    expect(body(throttleResponse('meta', { ...rate, scope: 'platform' }).body).error).toMatchObject({
      code: 4,
    });
    const buc = body(throttleResponse('meta', { ...rate, code: 80000 }).body).error as {
      code: number;
      message: string;
    };
    expect(buc.code).toBe(80000);
    expect(buc.message).toMatch(/^\(#80000\) There have been too many calls from this ad-account/);
    expect(body(throttleResponse('meta', { ...rate, kind: 'daily' }).body).error).toMatchObject({
      code: 80000,
    });
  });

  it('tiktok: HTTP 200 with code 40100', () => {
    const r = throttleResponse('tiktok', rate);
    expect(r.status).toBe(200);
    expect(body(r.body)).toMatchObject({ code: 40100 });
    expect(body(r.body).message).toMatch(/^Too many requests/);
    expect(typeof body(r.body).request_id).toBe('string');
  });

  it('google: 429 RESOURCE_EXHAUSTED with a quota error and retryDelay', () => {
    const r = throttleResponse('google', rate);
    expect(r.status).toBe(429);
    const error = body(r.body).error as {
      code: number;
      status: string;
      details: Array<{ '@type': string; errors: Array<Record<string, unknown>> }>;
    };
    expect(error.code).toBe(429);
    expect(error.status).toBe('RESOURCE_EXHAUSTED');
    expect(error.details[0]!['@type']).toBe(
      'type.googleapis.com/google.ads.googleads.v17.errors.GoogleAdsFailure',
    );
    expect(error.details[0]!.errors[0]).toMatchObject({
      errorCode: { quotaError: 'RESOURCE_EXHAUSTED' },
      details: { quotaErrorDetails: { rateScope: 'ACCOUNT', retryDelay: '5s' } },
    });
  });

  it('naver and kakao: 429 with their codes', () => {
    const naver = throttleResponse('naver', rate);
    expect(naver.status).toBe(429);
    expect(body(naver.body)).toEqual({ code: 1016, title: 'Too many requests' });
    const kakao = throttleResponse('kakao', rate);
    expect(kakao.status).toBe(429);
    expect(body(kakao.body)).toEqual({ code: -10, msg: 'API limit exceeded' });
  });
});

describe('usage headers', () => {
  const usage = {
    account: 'act_1',
    usedPct: 50,
    retryAfterMs: 0,
    strictest: { limit: 2, remaining: 1, resetInMs: 800 },
  };

  it('meta: the three usage headers on every answer', () => {
    const h = usageHeaders('meta', usage);
    expect(JSON.parse(h['x-business-use-case-usage']!)).toEqual({
      act_1: [
        {
          type: 'ads_insights',
          call_count: 50,
          total_cputime: 50,
          total_time: 50,
          estimated_time_to_regain_access: 0,
        },
      ],
    });
    expect(JSON.parse(h['x-ad-account-usage']!)).toEqual({
      acc_id_util_pct: 50,
      reset_time_duration: 1,
      ads_api_access_tier: 'standard_access',
    });
    expect(JSON.parse(h['x-app-usage']!)).toEqual({ call_count: 50, total_time: 50, total_cputime: 50 });
    const throttled = usageHeaders('meta', { ...usage, usedPct: 100, retryAfterMs: 61_000 });
    const buc = JSON.parse(throttled['x-business-use-case-usage']!) as Record<
      string,
      Array<Record<string, number>>
    >;
    expect(buc.act_1![0]!.estimated_time_to_regain_access).toBe(2);
    expect(usageHeaders('meta', { ...usage, strictest: undefined })['x-app-usage']).toBeDefined();
  });

  it('generic: RateLimit fields when a limit applies', () => {
    expect(usageHeaders('generic', usage)).toEqual({
      'ratelimit-limit': '2',
      'ratelimit-remaining': '1',
      'ratelimit-reset': '1',
    });
    expect(usageHeaders('generic', { ...usage, strictest: undefined })).toEqual({});
    expect(usageHeaders('tiktok', usage)).toEqual({});
  });
});

describe('other answers', () => {
  it.each(EMULATOR_STYLES)(
    '%s: 401, injected failures and bad requests are JSON with the status',
    (style) => {
      expect(unauthorizedResponse(style).status).toBe(401);
      expect(() => JSON.parse(unauthorizedResponse(style).body)).not.toThrow();
      expect(failResponse(style, 503).status).toBe(503);
      expect(() => JSON.parse(failResponse(style, 503).body)).not.toThrow();
      expect(badRequestResponse(style, 'nope').status).toBe(400);
      expect(badRequestResponse(style, 'nope').body).toContain('nope');
    },
  );

  it('badjson is a 200 that does not parse', () => {
    const r = badJsonResponse();
    expect(r.status).toBe(200);
    expect(() => JSON.parse(r.body)).toThrow();
  });

  it('rounds seconds up, at least 1', () => {
    expect(ceilSeconds(0)).toBe(1);
    expect(ceilSeconds(1000)).toBe(1);
    expect(ceilSeconds(1001)).toBe(2);
  });
});
