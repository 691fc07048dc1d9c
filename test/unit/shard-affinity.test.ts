import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import { placementOf, shardOf } from '../../src/limits/shard-affinity.ts';
import { limitChecksFor, templateVars } from '../../src/limits/limit-keys.ts';
import { jobSubject } from '../../src/messages/subject.ts';

const host = { allowHosts: ['api.example.com'] };
const config = (sources: PrismConfigInput['sources']) => parseConfig({ sources });

describe('shardOf: which shard of a node owns a job', () => {
  const cfg = config({
    google: {
      ...host,
      limits: [{ key: '{source}/{account}', limit: 10, per: '1s' }],
      apis: { search: {}, shopping: {} },
    },
    meta: {
      ...host,
      limits: [
        { key: '{source}/{account}', limit: 1, per: '5s' },
        { key: '{source}', limit: 200, per: '1h' },
      ],
      apis: { insights: {} },
    },
    appsflyer: {
      ...host,
      limits: [{ key: '{source}/{account}', limit: 120, per: '1d', reset: 'utc-day' }],
      apis: { installs: { limits: [{ key: '{source}/{meta.app_id}/{api}', limit: 1, per: '1m' }] } },
    },
    adjust: { ...host, limits: [{ key: '{source}/{node}', limit: 50, per: '1s' }], apis: { report: {} } },
    shared: { ...host, limits: [{ key: '{account}', limit: 5, per: '1s' }], apis: { report: {} } },
    free: { ...host, apis: { report: {}, other: {} } },
  });
  const shard = (source: string, api: string, account: string, shards = 4) =>
    shardOf(jobSubject({ source, api, account }), cfg, shards);

  it('spreads a source limited per account over the shards, keeping each account on one', () => {
    expect(placementOf(cfg.sources.google!)).toEqual({ kind: 'by', vars: ['account'] });
    const used = new Set<number>();
    for (let a = 0; a < 64; a++) {
      const here = shard('google', 'search', `acct_${a}`);
      // Both APIs of an account share its limit key: the same shard.
      expect(shard('google', 'shopping', `acct_${a}`)).toBe(here);
      used.add(here);
    }
    expect(used.size).toBe(4);
  });

  it('keeps a source with a source-wide limit on one shard', () => {
    expect(placementOf(cfg.sources.meta!)).toEqual({ kind: 'by', vars: [] });
    const first = shard('meta', 'insights', 'act_0');
    for (let a = 1; a < 32; a++) expect(shard('meta', 'insights', `act_${a}`)).toBe(first);
  });

  it('places by what every template names: an app limit per api and an account limit share only the source', () => {
    expect(placementOf(cfg.sources.appsflyer!)).toEqual({ kind: 'by', vars: [] });
    expect(placementOf(cfg.sources.adjust!)).toEqual({ kind: 'by', vars: [] });
  });

  it('puts a source whose limit keys may be shared with other sources on shard 0', () => {
    expect(placementOf(cfg.sources.shared!)).toEqual({ kind: 'first' });
    for (let a = 0; a < 16; a++) expect(shard('shared', 'report', `acct_${a}`)).toBe(0);
  });

  it('spreads the keys of a source without limits, and anything it cannot place, anywhere in range', () => {
    expect(placementOf(cfg.sources.free!)).toEqual({ kind: 'by', vars: ['api', 'account'] });
    for (const subject of ['prism.jobs.nope.report.a', 'not.a.job', 'prism.jobs.free.report.%ZZ']) {
      const s = shardOf(subject, cfg, 3);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(3);
    }
  });

  it('decodes subject tokens: two encodings of one account are one shard', () => {
    const encoded = shardOf('prism.jobs.google.search.act%2E1', cfg, 8);
    const plain = shardOf('prism.jobs.google.search.act%2e1', cfg, 8);
    expect(encoded).toBe(plain);
  });

  it('is one shard for any one node', () => {
    expect(shard('google', 'search', 'x', 1)).toBe(0);
  });

  /** The property that makes per-shard ledgers exact: jobs that share a limit key share a shard. */
  it('never splits a limit key over two shards', () => {
    const jobs = [];
    for (const [source, apis] of [
      ['google', ['search', 'shopping']],
      ['meta', ['insights']],
      ['appsflyer', ['installs']],
      ['adjust', ['report']],
      ['shared', ['report']],
    ] as const)
      for (const api of apis)
        for (let a = 0; a < 12; a++)
          jobs.push({ source, api, account: `acct_${a}`, meta: { app_id: `app_${a % 3}` } });
    const owner = new Map<string, number>();
    for (const job of jobs) {
      const source = cfg.sources[job.source]!;
      const checks = limitChecksFor(source, source.apis[job.api]!, templateVars(job, 'node-1'));
      if (!checks.ok) throw new Error(checks.reason);
      const here = shardOf(jobSubject(job), cfg, 5);
      for (const check of checks.checks) {
        const before = owner.get(check.key);
        if (before !== undefined) expect([check.key, here]).toEqual([check.key, before]);
        owner.set(check.key, here);
      }
    }
    expect(owner.size).toBeGreaterThan(20);
  });
});
