import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'prism-bad-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `prism node` with a bad config file: a clear one-line-per-problem error and a non-zero exit,
 * before it connects anywhere (the NATS URL points at a closed port and is never tried).
 */
function startNode(configText: string | undefined): { status: number | null; stderr: string } {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  if (configText !== undefined) writeFileSync(file, configText);
  const run = spawnSync(process.execPath, [main, 'node', '--config', file, '--nats', 'nats://127.0.0.1:1'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: run.status, stderr: run.stderr };
}

describe('prism node refuses an invalid config file at start-up', () => {
  it.each([
    ['a missing file', undefined, /cannot read config file .*ENOENT/],
    ['malformed JSON', '{"sources": {', /is not valid JSON/],
    [
      'a limit of zero and an unknown duration',
      JSON.stringify({
        sources: {
          meta: {
            allowHosts: ['graph.facebook.com'],
            limits: [{ key: '{source}', limit: 0, per: '5 fortnights' }],
            apis: { insights: {} },
          },
        },
      }),
      /sources\.meta\.limits\[0\]\.limit[\s\S]*sources\.meta\.limits\[0\]\.per/,
    ],
    [
      'an unknown placeholder and an unknown field',
      JSON.stringify({
        sources: {
          meta: {
            allowHosts: ['graph.facebook.com'],
            limits: [{ key: '{user}', limit: 1, per: '1s' }],
            apis: { insights: {} },
            typo: 1,
          },
        },
      }),
      /unknown placeholder[\s\S]*typo|typo[\s\S]*unknown placeholder/,
    ],
    [
      'a limit that is both a window and a concurrency cap',
      JSON.stringify({
        sources: {
          kakao: {
            allowHosts: ['apis.moment.kakao.com'],
            limits: [{ key: '{source}/{account}', limit: 5, per: '1s', concurrent: 1 }],
            apis: { report: {} },
          },
        },
      }),
      /either a window \(limit \+ per\) or a concurrency cap[\s\S]*sources\.kakao\.limits\[0\]/,
    ],
    [
      'an egress address this host does not have (checked before connecting anywhere)',
      // 192.0.2.1 is TEST-NET-1: no host has it. Binding a socket tells; no packet leaves.
      JSON.stringify({ node: { egressAddress: '192.0.2.1' }, sources: {} }),
      /egressAddress 192\.0\.2\.1 is not an address of this host/,
    ],
    [
      'more shards than a node may have',
      JSON.stringify({ node: { shards: 65 }, sources: {} }),
      /node\.shards/,
    ],
  ])('%s', (_name, text, reason) => {
    const { status, stderr } = startNode(text);
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/^prism: /);
    expect(stderr).toMatch(reason);
    // A clear message, not a stack trace.
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('prism node --shards', () => {
  it('refuses more shards than a node may have, before connecting anywhere', () => {
    const run = spawnSync(
      process.execPath,
      [main, 'node', '--shards', '65', '--nats', 'nats://127.0.0.1:1'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/^prism: --shards must be at most 64/);
  });
});
