import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAuthNatsServer, type AuthNatsServer } from '../helpers/nats-auth-server.ts';
import { spawnNodeProcess, type NodeProcess } from '../helpers/node-process.ts';

let server: AuthNatsServer | undefined;
let node: NodeProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (node !== undefined && node.child.exitCode === null && node.child.signalCode === null)
    node.signal('SIGKILL');
  await node?.exited;
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  node = server = dir = undefined;
});

describe('a node whose NATS login is revoked', () => {
  it('exits 1 with the reason instead of idling without a connection', async () => {
    const users = (password: string) =>
      `authorization { users: [ { user: prism, password: "${password}" } ] }`;
    server = await startAuthNatsServer(users('first-password'));
    dir = await mkdtemp(join(tmpdir(), 'prism-revoked-'));
    node = await spawnNodeProcess({
      name: 'revoked',
      config: {
        nats: { user: 'prism', passwordEnv: 'PRISM_TEST_NATS_PASSWORD' },
        sources: { adjust: { allowHosts: ['127.0.0.1'], apis: { report: {} } } },
      },
      natsUrl: server.url,
      storage: `file:${join(dir, 'data')}`,
      dir,
      env: { PRISM_TEST_NATS_PASSWORD: 'first-password' },
    });
    // The operator changes the password: the server drops the node and refuses its login.
    server.reload(users('second-password'));
    const exited = await Promise.race([
      node.exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000)),
    ]);
    expect(exited).toBe(1);
    const lines = node.logs();
    expect(lines.some((l) => l.msg === 'NATS connection closed for good')).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('first-password');
  }, 40_000);
});
