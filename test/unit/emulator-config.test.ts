import { describe, expect, it } from 'vitest';
import {
  defaultEmulatorConfig,
  EmulatorConfigError,
  parseEmulatorConfig,
  ruleName,
  styleOf,
} from '../../src/emulator/config.ts';

describe('emulator config', () => {
  it('has the seven platforms in their styles and no limits by default', () => {
    const config = defaultEmulatorConfig();
    expect(Object.keys(config.platforms).sort()).toEqual(
      ['adjust', 'appsflyer', 'google', 'kakao', 'meta', 'naver', 'tiktok'].sort(),
    );
    expect(config.limits).toEqual([]);
    expect(styleOf(config, 'meta')).toBe('meta');
    expect(styleOf(config, 'tiktok')).toBe('tiktok');
    expect(styleOf(config, 'google')).toBe('google');
    expect(styleOf(config, 'appsflyer')).toBe('generic');
  });

  it('uses the generic style for unknown platforms, prototype names included', () => {
    const config = defaultEmulatorConfig();
    expect(styleOf(config, 'snapchat')).toBe('generic');
    expect(styleOf(config, 'constructor')).toBe('generic');
    expect(styleOf(config, '__proto__')).toBe('generic');
  });

  it('accepts a full config and returns a copy', () => {
    const input = {
      platforms: { meta: { style: 'meta', latencyMs: 5, dailyQuota: 100 }, x: { style: 'kakao' } },
      limits: [
        { scope: 'account', platform: 'meta', limit: 2, perMs: 1000, code: 80000, name: 'buc' },
        { scope: 'ip', limit: 100, perMs: 1, report: 'insights' },
      ],
      latencyMs: 10,
      dailyQuota: 1000,
      requireBearer: 'secret-token',
    };
    const config = parseEmulatorConfig(input);
    expect(config).toEqual(input);
    expect(config.limits[0]).not.toBe(input.limits[0]);
  });

  it('accepts query, calendar-day and concurrency rules', () => {
    const limits = [
      { scope: 'query', platform: 'appsflyer', param: 'app_id', limit: 24, reset: 'utc-day' },
      { scope: 'query', param: 'app_id', limit: 2, perMs: 1000 },
      { scope: 'account', platform: 'kakao', concurrent: 2, code: 7, name: 'kakao-conc' },
      { scope: 'query', param: 'app_id', concurrent: 1 },
      // No ring behind a day count, so daily limits may be larger than a window's.
      { scope: 'platform', limit: 5_000_000, reset: 'utc-day' },
    ];
    expect(parseEmulatorConfig({ limits }).limits).toEqual(limits);
  });

  it('fills in default platforms and no limits', () => {
    expect(parseEmulatorConfig({})).toEqual(defaultEmulatorConfig());
    const config = parseEmulatorConfig({ limits: [{ scope: 'platform', limit: 1, perMs: 10 }] });
    expect(styleOf(config, 'meta')).toBe('meta');
  });

  it.each([
    [null, 'JSON object'],
    [[], 'JSON object'],
    [{ foo: 1 }, 'unknown field "foo"'],
    [{ platforms: [] }, 'platforms must be an object'],
    [{ platforms: { meta: { style: 'facebook' } } }, 'style must be one of'],
    [{ platforms: { meta: { style: 'meta', extra: 1 } } }, 'unknown field "extra"'],
    [{ platforms: { 'a/b': { style: 'meta' } } }, 'without "/"'],
    [{ limits: {} }, 'limits must be an array'],
    [{ limits: [{ scope: 'user', limit: 1, perMs: 1 }] }, 'scope must be one of'],
    [{ limits: [{ scope: 'account', perMs: 1 }] }, 'limit is required'],
    [{ limits: [{ scope: 'account', limit: 0, perMs: 1 }] }, 'limit must be between'],
    [{ limits: [{ scope: 'account', limit: 1.5, perMs: 1 }] }, 'limit must be an integer'],
    [{ limits: [{ scope: 'account', limit: 1 }] }, 'perMs is required'],
    [{ limits: [{ scope: 'account', limit: 1, perMs: 0 }] }, 'perMs must be between'],
    [{ limits: [{ scope: 'account', limit: 1, perMs: '1s' }] }, 'perMs must be a finite number'],
    [{ limits: [{ scope: 'account', limit: 1, perMs: 1, weight: 2 }] }, 'unknown field "weight"'],
    [
      { limits: [{ scope: 'query', limit: 1, perMs: 1 }] },
      'config.limits[0].param is required for scope "query"',
    ],
    [
      {
        limits: [
          { scope: 'ip', limit: 1, perMs: 1 },
          { scope: 'account', param: 'a', limit: 1, perMs: 1 },
        ],
      },
      'config.limits[1].param is only for scope "query"',
    ],
    [{ limits: [{ scope: 'query', param: '', limit: 1, perMs: 1 }] }, 'config.limits[0].param must be'],
    [{ limits: [{ scope: 'query', param: 7, limit: 1, perMs: 1 }] }, 'config.limits[0].param must be'],
    [
      { limits: [{ scope: 'account', concurrent: 0 }] },
      'config.limits[0].concurrent must be an integer between 1 and 1000000',
    ],
    [{ limits: [{ scope: 'account', concurrent: 1.5 }] }, 'concurrent must be an integer between 1'],
    [{ limits: [{ scope: 'account', concurrent: '2' }] }, 'concurrent must be an integer between 1'],
    [{ limits: [{ scope: 'account', concurrent: 1_000_001 }] }, 'concurrent must be an integer between 1'],
    [
      { limits: [{ scope: 'account', concurrent: 2, limit: 2 }] },
      'config.limits[0].limit does not go with concurrent',
    ],
    [
      { limits: [{ scope: 'account', concurrent: 2, perMs: 2 }] },
      'config.limits[0].perMs does not go with concurrent',
    ],
    [
      { limits: [{ scope: 'account', concurrent: 2, reset: 'utc-day' }] },
      'config.limits[0].reset does not go with concurrent',
    ],
    [
      { limits: [{ scope: 'account', limit: 1, perMs: 1000, reset: 'utc-day' }] },
      'config.limits[0]: give either perMs or reset "utc-day"',
    ],
    [{ limits: [{ scope: 'account', limit: 1 }] }, 'give either perMs or reset "utc-day"'],
    [{ limits: [{ scope: 'account', limit: 1, reset: 'day' }] }, 'config.limits[0].reset must be "utc-day"'],
    [{ limits: [{ scope: 'account', reset: 'utc-day' }] }, 'config.limits[0].limit is required'],
    [
      { limits: [{ scope: 'account', limit: 0, reset: 'utc-day' }] },
      'config.limits[0].limit must be between',
    ],
    [{ latencyMs: -1 }, 'latencyMs must be between'],
    [{ dailyQuota: 0 }, 'dailyQuota must be between'],
    [{ requireBearer: '' }, 'requireBearer'],
    [{ requireBearer: 'has space' }, 'requireBearer'],
  ])('rejects %j with a reason', (input, reason) => {
    expect(() => parseEmulatorConfig(input)).toThrow(EmulatorConfigError);
    expect(() => parseEmulatorConfig(input)).toThrow(reason);
  });

  it('names rules for stats', () => {
    expect(ruleName({ scope: 'account', limit: 2, perMs: 1000 })).toBe('account 2/1000ms');
    expect(
      ruleName({ scope: 'platform-report', platform: 'meta', report: 'insights', limit: 1, perMs: 5 }),
    ).toBe('platform-report:meta/insights 1/5ms');
    expect(ruleName({ scope: 'ip', limit: 1, perMs: 1, name: 'mine' })).toBe('mine');
    expect(ruleName({ scope: 'account', platform: 'kakao', concurrent: 2 })).toBe(
      'account:kakao concurrent 2',
    );
    expect(
      ruleName({ scope: 'query', platform: 'appsflyer', param: 'app_id', limit: 24, reset: 'utc-day' }),
    ).toBe('query:appsflyer app_id 24/utc-day');
    expect(ruleName({ scope: 'query', param: 'app_id', limit: 2, perMs: 1000 })).toBe(
      'query app_id 2/1000ms',
    );
    expect(ruleName({ scope: 'account-report', report: 'r', limit: 3, reset: 'utc-day' })).toBe(
      'account-report/r 3/utc-day',
    );
  });
});
