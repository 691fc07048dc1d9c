import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats-server.ts';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src/cli/main.ts');

/**
 * `prism demo`, the README's first command, as a user runs it (its own process, with the node's
 * flags), against a NATS server of the test's own (never the one that may listen on 4222).
 */
describe('prism demo', () => {
  let nats: NatsServerHandle;
  const dir = mkdtempSync(join(tmpdir(), 'prism-demo-'));
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores every job, dead-letters the two hostile ones, keeps every limit and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [...NODE_FLAGS, main, 'demo', '--nats', nats.url, '--storage', `file:${join(dir, 'data')}`],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(out).toMatch(/jobs +422: 420 stored, 2 dead-lettered, 0 missing/);
    expect(out).toMatch(/limits kept +yes: the emulator counted 0 violations/);
    expect(out).toMatch(/dead letter +1 × host "169\.254\.169\.254" is not in the source's allowHosts/);
    expect(code).toBe(0);
  }, 120_000);
});
