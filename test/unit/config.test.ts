import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.ts';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { productionConfig } from '../../src/config/platforms.ts';
import { laneOf, limitChecksFor, pauseKeysFor, resolveTemplate } from '../../src/limits/limit-keys.ts';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    [250, 250],
    ['42', 42],
  ])('%s is %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));
  it.each(['', '5 parsecs', '1h+', '-5s', 'fast'])('rejects %j', (input) =>
    expect(() => parseDuration(input)).toThrow(/invalid duration/),
  );
});

describe('config', () => {
  it('the embedded production config is valid', () => {
    expect(() => parseConfig(productionConfig())).not.toThrow();
  });

  it('reports every problem with its path', () => {
    let message = '';
    try {
      parseConfig({
        sources: {
          meta: {
            allowHosts: ['graph.facebook.com/evil'],
            limits: [{ key: '{acount}', limit: 0, per: '5 parsecs' }],
            apis: {},
          },
        },
      });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/allowHosts/);
    expect(message).toMatch(/unknown placeholder/);
    expect(message).toMatch(/invalid duration/);
    expect(message).toMatch(/limit/);
    expect(message).toMatch(/at least one api/);
  });

  it('takes -1 or a positive maxAckPending (no limit by default), and says so otherwise', () => {
    expect(parseConfig({ sources: {} }).node.maxAckPending).toBe(-1);
    expect(parseConfig({ node: { maxAckPending: 50_000 }, sources: {} }).node.maxAckPending).toBe(50_000);
    for (const bad of [0, -2, 1.5, '100'])
      expect(() => parseConfig({ node: { maxAckPending: bad }, sources: {} })).toThrow(/node\.maxAckPending/);
  });

  it('bounds the response bytes a node holds (256 MiB by default), and says so for a bad value', () => {
    expect(parseConfig({ sources: {} }).node.maxBodyBytesHeld).toBe(256 * 1024 * 1024);
    expect(parseConfig({ node: { maxBodyBytesHeld: 1_048_576 }, sources: {} }).node.maxBodyBytesHeld).toBe(
      1_048_576,
    );
    for (const bad of [0, -1, 1.5, '1GB'])
      expect(() => parseConfig({ node: { maxBodyBytesHeld: bad }, sources: {} })).toThrow(
        /node\.maxBodyBytesHeld/,
      );
  });

  it('takes a send allowance of 50 ms or more (1 s by default), and says why otherwise', () => {
    expect(parseConfig({ sources: {} }).node.sendAllowance).toBe(1_000);
    expect(parseConfig({ node: { sendAllowance: '2s' }, sources: {} }).node.sendAllowance).toBe(2_000);
    expect(() => parseConfig({ node: { sendAllowance: '10ms' }, sources: {} })).toThrow(
      /at least 50ms.*at node\.sendAllowance/s,
    );
    expect(() => parseConfig({ node: { sendAllowance: 'soon' }, sources: {} })).toThrow(
      /invalid duration.*at node\.sendAllowance/s,
    );
  });

  it('resolves limit templates, including meta fields, and merges duplicates to the stricter', () => {
    const config = parseConfig({
      sources: {
        af: {
          allowHosts: ['x.example'],
          limits: [
            { key: '{source}/{meta.app_id}', limit: 24, per: '1d', reset: 'utc-day' },
            { key: '{source}/{account}', limit: 5, per: '1s' },
            { key: '{source}/{account}', limit: 3, per: '1s' },
          ],
          apis: { r: { weight: 2 } },
        },
      },
    });
    const source = config.sources.af!;
    const vars = { source: 'af', api: 'r', account: 'acc 1', node: 'n1', meta: { app_id: 'com.app' } };
    const result = limitChecksFor(source, source.apis.r!, vars);
    expect(result).toEqual({
      ok: true,
      checks: [
        { key: 'af/com.app|day', limit: 24, windowMs: 86_400_000, kind: 'utc-day', weight: 2 },
        { key: 'af/acc%201|1000', limit: 3, windowMs: 1000, kind: 'rolling', weight: 2 },
      ],
    });
    expect(limitChecksFor(source, source.apis.r!, { ...vars, meta: {} })).toMatchObject({ ok: false });
    expect(resolveTemplate('{source}/{node}', vars)).toBe('af/n1');
  });

  it('gives jobs of one account their own line per value of the meta fields its limits and signals name', () => {
    const config = parseConfig({
      sources: {
        af: {
          allowHosts: ['x.example'],
          limits: [{ key: '{source}/{meta.app_id}/{api}', limit: 1, per: '1m' }],
          signals: [
            { name: 's', match: { status: 429 }, scope: '{source}/{meta.team}', action: { type: 'pause' } },
          ],
          apis: { r: {} },
        },
        plain: {
          allowHosts: ['x.example'],
          limits: [{ key: '{source}/{account}', limit: 1, per: '1s' }],
          apis: { r: {} },
        },
      },
    });
    expect(laneOf(config.sources.af!, { app_id: 'com.a b', team: 7, other: 'x' })).toBe(
      '/app_id=com.a%20b/team=7',
    );
    expect(laneOf(config.sources.af!, { app_id: 'com.c' })).toBe('/app_id=com.c');
    expect(laneOf(config.sources.af!, {})).toBe('');
    expect(laneOf(config.sources.plain!, { app_id: 'com.a' })).toBe('');
  });

  it("names the scopes whose pauses stop a job: its key, account, source and its signals' scopes", () => {
    const config = parseConfig({
      sources: {
        g: {
          allowHosts: ['x.example'],
          signals: [
            { name: 'app', match: { status: 429 }, scope: '{source}/{meta.app}', action: { type: 'pause' } },
            { name: 'acct', match: { status: 403 }, scope: '{source}/{account}', action: { type: 'pause' } },
          ],
          apis: { r: {} },
        },
      },
    });
    const vars = { source: 'g', api: 'r', account: 'a1', node: 'n1', meta: { app: 'x' } };
    // The job's own key takes its lane (signals here are keyed by meta.app).
    expect(pauseKeysFor(config.sources.g!, vars)).toEqual(['g/r/a1/app=x', 'g/a1', 'g', 'g/x']);
    // A scope the job cannot fill (no meta.app) stops nothing rather than everything.
    expect(pauseKeysFor(config.sources.g!, { ...vars, meta: {} })).toEqual(['g/r/a1', 'g/a1', 'g']);
  });
});

describe('the deployment config (deploy/prism.json, used by docker-compose.yml)', () => {
  it('loads, with the shared ledger and its margins set explicitly', () => {
    const config = loadConfigFile(new URL('../../deploy/prism.json', import.meta.url).pathname);
    expect(config.node).toMatchObject({ ledger: 'nats-kv', limitMargin: 25, sendAllowance: 1_000 });
    expect(Object.keys(config.sources)).toEqual(['meta']);
    expect(config.sources.meta?.limits.length).toBeGreaterThan(0);
  });
});
