import { describe, expect, it } from 'vitest';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import { LimitBook, ruleApplies, scopeKey } from '../../src/emulator/limit-book.ts';
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
        limit: 2,
        perMs: 1000,
        calls: 5,
        violations: 1,
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
