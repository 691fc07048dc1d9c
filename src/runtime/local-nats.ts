import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalNats {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const CANDIDATES = [
  'nats-server',
  '/usr/sbin/nats-server',
  '/usr/bin/nats-server',
  '/usr/local/bin/nats-server',
];

export class NatsServerMissing extends Error {
  override name = 'NatsServerMissing';
}

export function findNatsServer(env = process.env): string | undefined {
  const dirs = (env.PATH ?? '').split(':').filter(Boolean);
  for (const candidate of CANDIDATES) {
    if (candidate.startsWith('/')) {
      if (existsSync(candidate)) return candidate;
    } else {
      for (const dir of dirs) if (existsSync(join(dir, candidate))) return join(dir, candidate);
    }
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Starts a throw-away nats-server with JetStream on a free loopback port (for the demo). */
export async function startLocalNats(): Promise<LocalNats> {
  const binary = findNatsServer();
  if (binary === undefined) {
    throw new NatsServerMissing(
      'no NATS server found: set NATS_URL to a NATS server with JetStream, or install one ' +
        '(Debian/Ubuntu: `sudo apt-get install nats-server`; others: https://docs.nats.io/running-a-nats-service/introduction/installation)',
    );
  }
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'prism-nats-'));
  const child: ChildProcess = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
    stdio: 'ignore',
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(storeDir, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));
  for (let i = 0; i < 100; i++) {
    if (await isListening('127.0.0.1', port, 200)) return { url: `nats://127.0.0.1:${port}`, port, stop };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`nats-server (${binary}) did not start on port ${port}`);
}
