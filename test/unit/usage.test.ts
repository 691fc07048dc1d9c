import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { productionConfig } from '../../src/config/platforms.ts';
import { classifyResponse } from '../../src/limits/signals.ts';
import { rateLimitHeaders, usageAdvice } from '../../src/limits/usage.ts';

const config = parseConfig(productionConfig());
const meta = config.sources.meta!.usage;
const now = 1_000_000;

describe('usage headers', () => {
  it('leaves a key alone below slowAt', () => {
    const headers = {
      'x-business-use-case-usage': JSON.stringify({
        act_1: [{ call_count: 40, total_cputime: 10, total_time: 20, estimated_time_to_regain_access: 0 }],
      }),
    };
    expect(usageAdvice(headers, meta, now)).toEqual([]);
  });

  it('slows the account from 75% and slows harder closer to the wall', () => {
    const at = (pct: number) =>
      usageAdvice(
        { 'x-ad-account-usage': JSON.stringify({ acc_id_util_pct: pct, reset_time_duration: 120 }) },
        meta,
        now,
      );
    expect(at(76)).toEqual([
      expect.objectContaining({ action: 'slow', scope: '{source}/{account}', intervalMs: 2_000 }),
    ]);
    expect(at(86)).toEqual([expect.objectContaining({ action: 'slow', intervalMs: 8_000 })]);
    expect(at(96)).toEqual([expect.objectContaining({ action: 'pause', until: now + 120_000 })]);
  });

  it('pauses for estimated_time_to_regain_access, and the whole app on X-App-Usage', () => {
    const advice = usageAdvice(
      {
        'x-business-use-case-usage': JSON.stringify({
          act_1: [{ call_count: 100, estimated_time_to_regain_access: 3 }],
        }),
        'x-app-usage': JSON.stringify({ call_count: 97, total_time: 10, total_cputime: 5 }),
      },
      meta,
      now,
    );
    expect(advice).toEqual([
      expect.objectContaining({ action: 'pause', scope: '{source}/{account}', until: now + 180_000 }),
      expect.objectContaining({ action: 'pause', scope: '{source}' }),
    ]);
  });

  it('reads the RateLimit headers of every draft, and X-RateLimit-*', () => {
    const left = (headers: Record<string, string>) => rateLimitHeaders(headers, now);
    expect(left({ 'ratelimit-limit': '10', 'ratelimit-remaining': '4', 'ratelimit-reset': '6' })).toEqual({
      limit: 10,
      remaining: 4,
      resetAt: now + 6_000,
    });
    expect(left({ ratelimit: 'limit=10, remaining=4, reset=6' })).toEqual({
      limit: 10,
      remaining: 4,
      resetAt: now + 6_000,
    });
    expect(left({ ratelimit: '"default";r=4;t=6', 'ratelimit-policy': '"default";q=10;w=60' })).toEqual({
      limit: 10,
      remaining: 4,
      resetAt: now + 6_000,
    });
    expect(left({ 'ratelimit-policy': '10;w=60', ratelimit: 'limit=10, remaining=4, reset=6' })?.limit).toBe(
      10,
    );
    // An epoch time in seconds, as GitHub-style X-RateLimit-Reset sends it.
    expect(left({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2000000000' })).toEqual({
      limit: undefined,
      remaining: 0,
      resetAt: 2_000_000_000_000,
    });
    expect(left({ 'ratelimit-remaining': 'lots', 'ratelimit-reset': '6' })).toBeUndefined();
    expect(left({ 'ratelimit-remaining': '3' })).toBeUndefined();
  });

  it('spreads the last quarter of a quota to its reset, and pauses when none is left', () => {
    const advice = (remaining: number) =>
      usageAdvice(
        { 'ratelimit-limit': '20', 'ratelimit-remaining': String(remaining), 'ratelimit-reset': '10' },
        undefined,
        now,
      );
    expect(advice(6)).toEqual([]);
    expect(advice(5)).toEqual([
      expect.objectContaining({
        action: 'slow',
        scope: '{source}/{api}/{account}',
        until: now + 10_000,
        intervalMs: 2_000,
      }),
    ]);
    expect(advice(1)).toEqual([expect.objectContaining({ action: 'slow', intervalMs: 10_000 })]);
    expect(advice(0)).toEqual([expect.objectContaining({ action: 'pause', until: now + 10_000 })]);
    // Without the limit, how much is left is not known as a share: only 0 acts.
    expect(usageAdvice({ 'ratelimit-remaining': '1', 'ratelimit-reset': '10' }, undefined, now)).toEqual([]);
  });

  it('honours RateLimit-Remaining: 0 on any source, and ignores malformed headers', () => {
    expect(usageAdvice({ 'ratelimit-remaining': '0', 'ratelimit-reset': '7' }, undefined, now)).toEqual([
      expect.objectContaining({ action: 'pause', until: now + 7_000 }),
    ]);
    expect(usageAdvice({ 'x-app-usage': '{not json', 'ratelimit-remaining': '3' }, meta, now)).toEqual([]);
  });
});

describe("Google's retryDelay in the body", () => {
  it('pauses the account for the delay Google names', () => {
    const body = {
      error: {
        code: 429,
        status: 'RESOURCE_EXHAUSTED',
        details: [
          {
            errors: [
              {
                errorCode: { quotaError: 'RESOURCE_EXHAUSTED' },
                details: { quotaErrorDetails: { rateScope: 'ACCOUNT', retryDelay: '17s' } },
              },
            ],
          },
        ],
      },
    };
    const outcome = classifyResponse(
      { status: 429, headers: {}, json: body, bodyText: () => '' },
      config.sources.google!.signals,
      now,
    );
    expect(outcome).toMatchObject({ kind: 'throttled', scope: '{source}/{account}', until: now + 17_000 });
  });
});
