import { describe, expect, it } from 'vitest';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import {
  CONCURRENCY_RETRY_MS,
  LimitBook,
  queryKey,
  ruleApplies,
  ruleKey,
  scopeKey,
} from '../../src/emulator/limit-book.ts';
import type { CallKey } from '../../src/emulator/limit-book.ts';
import type { EmulatorConfig, LimitRule } from '../../src/emulator/types.ts';

const call = (over: Partial<CallKey> = {}): CallKey => ({
  platform: 'meta',
  account: 'act_1',
  report: 'insights',
  ip: '127.0.0.1',
  ...over,
});

function config(limits: LimitRule[], extra: Partial<EmulatorConfig> = {}): EmulatorConfig {
  return { ...defaultEmulatorConfig(), limits, ...extra };
}

const NOON = Date.UTC(2026, 10, 24, 12, 0, 0);

describe('scope keys', () => {
  it('names each scope', () => {
    const c = call();
    expect(scopeKey('account', c)).toBe('account:meta/act_1');
    expect(scopeKey('account-report', c)).toBe('account-report:meta/act_1/insights');
    expect(scopeKey('platform', c)).toBe('platform:meta');
    expect(scopeKey('platform-report', c)).toBe('platform-report:meta/insights');
    expect(scopeKey('ip', c)).toBe('ip:meta/127.0.0.1');
  });

  it('keys a query rule by its parameter, and skips calls without it', () => {
    const rule: LimitRule = { scope: 'query', param: 'app_id', limit: 1, perMs: 1 };
    expect(ruleKey(rule, call({ query: new URLSearchParams('app_id=com.x&b=1') }))).toBe(
      'query:meta/app_id=com.x',
    );
    expect(queryKey('appsflyer', 'app_id', 'id1')).toBe('query:appsflyer/app_id=id1');
    expect(ruleKey(rule, call({ query: new URLSearchParams('b=1') }))).toBeUndefined();
    expect(ruleKey(rule, call())).toBeUndefined();
    // An empty value is a value (the platform would see `app_id=`).
    expect(ruleKey(rule, call({ query: new URLSearchParams('app_id=') }))).toBe('query:meta/app_id=');
    expect(ruleKey({ scope: 'ip', limit: 1, perMs: 1 }, call())).toBe('ip:meta/127.0.0.1');
  });

  it('filters rules by platform and report', () => {
    const rule: LimitRule = { scope: 'account', limit: 1, perMs: 1, platform: 'meta', report: 'insights' };
    expect(ruleApplies(rule, call())).toBe(true);
    expect(ruleApplies(rule, call({ platform: 'tiktok' }))).toBe(false);
    expect(ruleApplies(rule, call({ report: 'ads' }))).toBe(false);
    expect(ruleApplies({ scope: 'platform', limit: 1, perMs: 1 }, call({ platform: 'x' }))).toBe(true);
  });
});

describe('LimitBook', () => {
  it('counts violations per rule and per key, and the window slides', () => {
    const book = new LimitBook(config([{ scope: 'account', limit: 2, perMs: 1000 }]));
    expect(book.arrive(call(), 0, NOON).broken).toEqual([]);
    expect(book.arrive(call(), 100, NOON).broken).toEqual([]);
    const third = book.arrive(call(), 200, NOON);
    expect(third.broken).toHaveLength(1);
    expect(third.retryAfterMs).toBe(900);
    expect(third.usedPct).toBe(100);
    // Another account is not affected.
    expect(book.arrive(call({ account: 'act_2' }), 210, NOON).broken).toEqual([]);
    // (200, 1200]: only the refused call at 200 is gone... 100 left at 1100, so at 1201 one remains.
    expect(book.arrive(call(), 1201, NOON).broken).toEqual([]);
    expect(book.violations).toBe(1);
    expect(book.byKey()['account:meta/act_1']).toEqual({ calls: 4, violations: 1, minGapMs: 100 });
    expect(book.byKey()['account:meta/act_2']).toEqual({ calls: 1, violations: 0, minGapMs: null });
    expect(book.byRule()).toEqual([
      {
        name: 'account 2/1000ms',
        scope: 'account',
        platform: null,
        report: null,
        param: null,
        limit: 2,
        perMs: 1000,
        reset: null,
        concurrent: null,
        calls: 5,
        violations: 1,
        maxInFlight: 0,
      },
    ]);
  });

  it('counts a call once per key even when two rules share the key', () => {
    const book = new LimitBook(
      config([
        { scope: 'account', limit: 1, perMs: 1000 },
        { scope: 'account', limit: 10, perMs: 60_000 },
      ]),
    );
    book.arrive(call(), 0, NOON);
    const second = book.arrive(call(), 10, NOON);
    expect(second.broken).toHaveLength(1);
    expect(book.byKey()['account:meta/act_1']).toEqual({ calls: 2, violations: 1, minGapMs: 10 });
    expect(book.violations).toBe(1);
  });

  it('reports the strictest window and the time until every limit has room', () => {
    const book = new LimitBook(
      config([
        { scope: 'account', limit: 4, perMs: 1000 },
        { scope: 'platform', limit: 2, perMs: 10_000 },
      ]),
    );
    book.arrive(call(), 0, NOON);
    const v = book.arrive(call({ account: 'act_9' }), 500, NOON);
    expect(v.strictest?.key).toBe('platform:meta');
    expect(v.usedPct).toBe(100);
    expect(v.retryAfterMs).toBe(9500);
    expect(v.broken).toEqual([]);
    const refused = book.arrive(call(), 600, NOON);
    expect(refused.broken.map((h) => h.key)).toEqual(['platform:meta']);
  });

  it('applies platform- and report-filtered rules only to their calls', () => {
    const book = new LimitBook(
      config([{ scope: 'account-report', platform: 'tiktok', limit: 1, perMs: 1000 }]),
    );
    book.arrive(call(), 0, NOON);
    expect(book.arrive(call(), 1, NOON).broken).toEqual([]);
    const t = call({ platform: 'tiktok' });
    book.arrive(t, 2, NOON);
    expect(book.arrive(t, 3, NOON).broken).toHaveLength(1);
    expect(book.arrive({ ...t, report: 'other' }, 4, NOON).broken).toEqual([]);
  });

  it('enforces the daily quota per account and resets it at 00:00 UTC', () => {
    const book = new LimitBook(config([], { dailyQuota: 2 }));
    expect(book.arrive(call(), 0, NOON).quotaExceeded).toBe(false);
    expect(book.arrive(call(), 1, NOON).quotaExceeded).toBe(false);
    const over = book.arrive(call(), 2, NOON);
    expect(over.quotaExceeded).toBe(true);
    expect(over.quotaResetMs).toBe(12 * 3_600_000);
    expect(book.arrive(call({ account: 'b' }), 3, NOON).quotaExceeded).toBe(false);
    const nextDay = Date.UTC(2026, 10, 25, 0, 0, 0);
    expect(book.arrive(call(), 4, nextDay - 1).quotaExceeded).toBe(true);
    expect(book.arrive(call(), 5, nextDay).quotaExceeded).toBe(false);
    expect(book.quotaExceeded).toBe(2);
    expect(book.violations).toBe(2);
    expect(book.byKey()['daily:meta/act_1']).toMatchObject({ calls: 5, violations: 2 });
  });

  it('lets a platform quota override the config-wide one', () => {
    const base = config([], { dailyQuota: 100 });
    base.platforms.meta = { style: 'meta', dailyQuota: 1 };
    const book = new LimitBook(base);
    book.arrive(call(), 0, NOON);
    expect(book.arrive(call(), 1, NOON).quotaExceeded).toBe(true);
    book.arrive(call({ platform: 'tiktok' }), 2, NOON);
    expect(book.arrive(call({ platform: 'tiktok' }), 3, NOON).quotaExceeded).toBe(false);
  });

  it('clears everything on clear() and windows on setConfig()', () => {
    const book = new LimitBook(config([{ scope: 'account', limit: 1, perMs: 1000 }]));
    book.arrive(call(), 0, NOON);
    book.arrive(call(), 1, NOON);
    book.clear();
    expect(book.violations).toBe(0);
    expect(book.byKey()).toEqual({});
    expect(book.arrive(call(), 2, NOON).broken).toEqual([]);
    book.setConfig(config([{ scope: 'account', limit: 1, perMs: 1000 }]));
    expect(book.arrive(call(), 3, NOON).broken).toEqual([]);
  });

  it('keeps the account key without any limits', () => {
    const book = new LimitBook(config([]));
    const v = book.arrive(call(), 0, NOON);
    expect(v).toMatchObject({ broken: [], strictest: undefined, usedPct: 0, retryAfterMs: 0 });
    book.arrive(call(), 7, NOON);
    expect(book.byKey()).toEqual({ 'account:meta/act_1': { calls: 2, violations: 0, minGapMs: 7 } });
  });
});

const q = (query: string): CallKey => call({ platform: 'appsflyer', query: new URLSearchParams(query) });

describe('LimitBook: query rules', () => {
  it('counts calls per parameter value across accounts, and not those without it', () => {
    const book = new LimitBook(
      config([{ scope: 'query', platform: 'appsflyer', param: 'app_id', limit: 2, perMs: 1000 }]),
    );
    expect(book.arrive({ ...q('app_id=x'), account: 'a1' }, 0, NOON).broken).toEqual([]);
    expect(book.arrive({ ...q('app_id=x'), account: 'a2' }, 10, NOON).broken).toEqual([]);
    const third = book.arrive({ ...q('app_id=x'), account: 'a3' }, 20, NOON);
    expect(third.broken.map((h) => h.key)).toEqual(['query:appsflyer/app_id=x']);
    // The refused call at 20 counts too, so room comes when the call at 10 leaves the window.
    expect(third.retryAfterMs).toBe(990);
    // Another app, no app, and another platform's app are not counted against app x.
    expect(book.arrive(q('app_id=y'), 30, NOON).broken).toEqual([]);
    expect(book.arrive(q(''), 40, NOON).broken).toEqual([]);
    expect(book.arrive(q(''), 41, NOON).broken).toEqual([]);
    expect(book.arrive(call({ query: new URLSearchParams('app_id=x') }), 50, NOON).broken).toEqual([]);
    expect(book.violations).toBe(1);
    expect(book.byRule()[0]).toMatchObject({
      name: 'query:appsflyer app_id 2/1000ms',
      param: 'app_id',
      calls: 4,
      violations: 1,
    });
    expect(book.byKey()['query:appsflyer/app_id=x']).toEqual({ calls: 3, violations: 1, minGapMs: 10 });
    expect(book.byKey()['query:appsflyer/app_id=y']).toEqual({ calls: 1, violations: 0, minGapMs: null });
    expect(Object.keys(book.byKey()).filter((k) => k.startsWith('query:'))).toHaveLength(2);
  });
});

describe('LimitBook: concurrency rules', () => {
  const two: LimitRule = { scope: 'account', platform: 'kakao', concurrent: 2 };
  const kakao = (account = '1'): CallKey => call({ platform: 'kakao', account });

  it('refuses the call that would make N+1 in flight, per key, until one ends', () => {
    const book = new LimitBook(config([two]));
    const a = book.arrive(kakao(), 0, NOON);
    const b = book.arrive(kakao(), 1, NOON);
    expect([a.broken, b.broken]).toEqual([[], []]);
    // Full but not over: the next call would be refused, so retry is announced.
    expect(b.retryAfterMs).toBe(CONCURRENCY_RETRY_MS);
    const c = book.arrive(kakao(), 2, NOON);
    expect(c.broken).toHaveLength(1);
    expect(c.broken[0]).toMatchObject({ key: 'account:kakao/1', limit: 2, result: { count: 3 } });
    expect(c.retryAfterMs).toBe(CONCURRENCY_RETRY_MS);
    // Another account has its own count; another platform no rule.
    expect(book.arrive(kakao('2'), 3, NOON).broken).toEqual([]);
    expect(book.arrive(call(), 3, NOON).broken).toEqual([]);
    // The refused call is in flight too: ending `a` leaves b and c, still 2.
    book.depart(a.flight);
    expect(book.arrive(kakao(), 4, NOON).broken).toHaveLength(1);
    expect(book.byRule()[0]).toMatchObject({
      name: 'account:kakao concurrent 2',
      concurrent: 2,
      limit: null,
      perMs: null,
      reset: null,
      calls: 5,
      violations: 2,
      maxInFlight: 3,
    });
    expect(book.byKey()['account:kakao/1']).toMatchObject({ calls: 4, violations: 2 });
    expect(book.violations).toBe(2);
  });

  it('takes calls that never overlap, and a client that keeps exactly N in flight reaches maxInFlight N', () => {
    const book = new LimitBook(config([two]));
    let held = book.arrive(kakao(), 0, NOON).flight;
    for (let t = 1; t <= 100; t++) {
      const next = book.arrive(kakao(), t, NOON);
      expect(next.broken).toEqual([]);
      book.depart(held);
      held = next.flight;
    }
    book.depart(held);
    expect(book.violations).toBe(0);
    expect(book.byRule()[0]).toMatchObject({ calls: 101, violations: 0, maxInFlight: 2 });
  });

  it('keeps no entry for a key without calls in flight, and a second depart changes nothing', () => {
    const book = new LimitBook(config([two, { scope: 'platform', concurrent: 1000 }]));
    const flights = Array.from({ length: 50 }, (_, i) => book.arrive(kakao(String(i)), i, NOON).flight);
    expect(book.inFlight).toBe(50);
    // 50 account keys on the kakao rule, one platform key on the other.
    expect(book.inFlightKeys).toBe(51);
    for (const f of flights) book.depart(f);
    expect(book.inFlight).toBe(0);
    expect(book.inFlightKeys).toBe(0);
    // Departing again must not push a count below zero and let two calls through as if one.
    for (const f of flights.slice(0, 10)) book.depart(f);
    book.arrive(kakao('0'), 60, NOON);
    book.arrive(kakao('0'), 61, NOON);
    expect(book.arrive(kakao('0'), 62, NOON).broken).toHaveLength(1);
  });

  it('stays out of usage figures, which describe windows', () => {
    const book = new LimitBook(config([{ scope: 'account', concurrent: 1 }]));
    const v = book.arrive(call(), 0, NOON);
    expect(v).toMatchObject({ strictest: undefined, usedPct: 0, appUsedPct: 0 });
  });

  it('keeps calls in flight across clear(): they count on, and end without going negative', () => {
    const book = new LimitBook(config([two]));
    const a = book.arrive(kakao(), 0, NOON);
    const b = book.arrive(kakao(), 1, NOON);
    book.clear();
    expect(book.byRule()[0]).toMatchObject({ calls: 0, violations: 0, maxInFlight: 2 });
    // a and b are still in flight at the platform.
    const c = book.arrive(kakao(), 2, NOON);
    expect(c.broken).toHaveLength(1);
    book.depart(a.flight);
    book.depart(b.flight);
    book.depart(c.flight);
    expect(book.inFlightKeys).toBe(0);
    book.clear();
    expect(book.byRule()[0]!.maxInFlight).toBe(0);
    // Back to exactly two places: two pass, the third is refused.
    book.arrive(kakao(), 3, NOON);
    book.arrive(kakao(), 4, NOON);
    expect(book.arrive(kakao(), 5, NOON).broken).toHaveLength(1);
    expect(book.violations).toBe(1);
  });

  it('counts calls in flight against the concurrency rules of a new config', () => {
    const book = new LimitBook(config([]));
    const early = book.arrive(kakao(), 0, NOON);
    book.arrive(call(), 0, NOON); // meta: no rule of the new config applies
    book.setConfig(config([{ scope: 'account', platform: 'kakao', concurrent: 1 }]));
    expect(book.byRule()[0]).toMatchObject({ calls: 0, maxInFlight: 1 });
    const refused = book.arrive(kakao(), 1, NOON);
    expect(refused.broken).toHaveLength(1);
    book.depart(early.flight);
    book.depart(refused.flight);
    expect(book.inFlightKeys).toBe(0);
    expect(book.arrive(kakao(), 2, NOON).broken).toEqual([]);
  });

  it('drops the old gauges on setConfig, so calls from before end without touching the new ones', () => {
    const book = new LimitBook(config([{ scope: 'account', concurrent: 1 }]));
    const before = book.arrive(kakao(), 0, NOON);
    book.setConfig(config([{ scope: 'platform', concurrent: 2 }]));
    // `before` now holds one of the platform's two places.
    const x = book.arrive(kakao('9'), 1, NOON);
    expect(x.broken).toEqual([]);
    expect(book.arrive(kakao('8'), 2, NOON).broken).toHaveLength(1);
    book.depart(before.flight);
    book.depart(before.flight);
    // x and the refused call remain: still full, and not freed twice by `before`.
    expect(book.arrive(kakao('7'), 3, NOON).broken).toHaveLength(1);
    expect(book.byRule()[0]).toMatchObject({ calls: 3, violations: 2, maxInFlight: 3 });
  });

  it('applies to query keys too', () => {
    const book = new LimitBook(config([{ scope: 'query', param: 'app_id', concurrent: 1 }]));
    book.arrive(q('app_id=x'), 0, NOON);
    expect(book.arrive(q('app_id=y'), 1, NOON).broken).toEqual([]);
    expect(book.arrive(q(''), 1, NOON).broken).toEqual([]);
    expect(book.arrive({ ...q('app_id=x'), account: 'other' }, 2, NOON).broken).toHaveLength(1);
    expect(book.byRule()[0]).toMatchObject({ name: 'query app_id concurrent 1', calls: 3, maxInFlight: 2 });
  });
});

describe('LimitBook: calendar-day rules', () => {
  const MIDNIGHT = Date.UTC(2026, 10, 25, 0, 0, 0);

  it('allows `limit` calls per key per UTC day, answers until the next 00:00 UTC', () => {
    const book = new LimitBook(
      config([{ scope: 'query', platform: 'appsflyer', param: 'app_id', limit: 2, reset: 'utc-day' }]),
    );
    const first = book.arrive(q('app_id=x'), 0, NOON);
    expect(first).toMatchObject({ broken: [], quotaExceeded: false, usedPct: 50, retryAfterMs: 0 });
    expect(first.strictest).toMatchObject({ limit: 2, result: { count: 1, resetInMs: 12 * 3_600_000 } });
    const second = book.arrive(q('app_id=x'), 1, NOON);
    expect(second).toMatchObject({ broken: [], quotaExceeded: false, retryAfterMs: 12 * 3_600_000 });
    const over = book.arrive({ ...q('app_id=x'), account: 'b' }, 2, MIDNIGHT - 1000);
    expect(over.broken.map((h) => h.key)).toEqual(['query:appsflyer/app_id=x']);
    expect(over).toMatchObject({ quotaExceeded: true, quotaResetMs: 1000, retryAfterMs: 1000, usedPct: 100 });
    expect(book.arrive(q('app_id=y'), 3, MIDNIGHT - 1).quotaExceeded).toBe(false);
    // A new UTC day: x may call twice again.
    expect(book.arrive(q('app_id=x'), 4, MIDNIGHT).broken).toEqual([]);
    expect(book.arrive(q('app_id=x'), 5, MIDNIGHT + 1).broken).toEqual([]);
    expect(book.arrive(q('app_id=x'), 6, MIDNIGHT + 2).quotaExceeded).toBe(true);
    expect(book.quotaExceeded).toBe(2);
    expect(book.violations).toBe(2);
    expect(book.byRule()[0]).toMatchObject({
      name: 'query:appsflyer app_id 2/utc-day',
      limit: 2,
      perMs: null,
      reset: 'utc-day',
      concurrent: null,
      calls: 7,
      violations: 2,
      maxInFlight: 0,
    });
    expect(book.byKey()['query:appsflyer/app_id=x']).toMatchObject({ calls: 6, violations: 2 });
  });

  it('counts refused calls, and an arrival over both a window and the day once', () => {
    const book = new LimitBook(
      config([
        { scope: 'account', limit: 1, perMs: 1000 },
        { scope: 'account', limit: 2, reset: 'utc-day' },
      ]),
    );
    book.arrive(call(), 0, NOON);
    // Over the window only (the day count reaches 2 with it).
    const v = book.arrive(call(), 10, NOON);
    expect(v.broken.map((h) => h.rule.reset ?? 'window')).toEqual(['window']);
    expect(v.quotaExceeded).toBe(false);
    // Over both: one violation, one quotaExceeded.
    const both = book.arrive(call(), 20, NOON);
    expect(both.broken).toHaveLength(2);
    expect(both.quotaExceeded).toBe(true);
    expect(book.violations).toBe(2);
    expect(book.quotaExceeded).toBe(1);
    expect(book.byKey()['account:meta/act_1']).toEqual({ calls: 3, violations: 2, minGapMs: 10 });
  });

  it('starts over on clear() and setConfig()', () => {
    const rules: LimitRule[] = [{ scope: 'platform', limit: 1, reset: 'utc-day' }];
    const book = new LimitBook(config(rules));
    book.arrive(call(), 0, NOON);
    expect(book.arrive(call(), 1, NOON).quotaExceeded).toBe(true);
    book.clear();
    expect(book.arrive(call(), 2, NOON).quotaExceeded).toBe(false);
    book.setConfig(config(rules));
    expect(book.arrive(call(), 3, NOON).quotaExceeded).toBe(false);
    expect(book.arrive(call(), 4, NOON).quotaExceeded).toBe(true);
  });
});
