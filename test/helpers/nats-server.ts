import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer, freePort, isListening } from '../../src/runtime/local-nats.ts';
import { noteChild } from './children.ts';

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  readonly pid: number | undefined;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit (data on disk stays). */
  kill(): Promise<void>;
  /** Starts again on the same port and store. */
  restart(): Promise<void>;
}

/** A nats-server with JetStream of the test's own, on a free loopback port (never 4222). */
export async function startNatsServer(
  opts: { storeDir?: string; port?: number } = {},
): Promise<NatsServerHandle> {
  const binary = findNatsServer();
  if (binary === undefined)
    throw new Error('nats-server is not installed: run .ci/run or `apt-get install nats-server`');
  const port = opts.port ?? (await freePort());
  const ownDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'prism-test-nats-'));
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
      stdio: 'ignore',
    });
    noteChild(child.pid);
    const started = child;
    for (let i = 0; i < 200; i++) {
      if (started.exitCode !== null)
        throw new Error(`nats-server exited with ${started.exitCode} on port ${port}`);
      if (await isListening('127.0.0.1', port, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server did not listen on ${port}`);
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(signal);
    await exited;
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get pid() {
      return child?.pid;
    },
    async stop() {
      await end('SIGTERM');
      if (ownDir) rmSync(storeDir, { recursive: true, force: true });
    },
    kill: () => end('SIGKILL'),
    async restart() {
      await end('SIGTERM');
      await launch();
    },
  };
}
