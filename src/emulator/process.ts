import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setPriority } from 'node:os';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../runtime/local-nats.ts';
import { defaultEmulatorConfig } from './config.ts';
import type { EmulatorConfig, EmulatorStats } from './types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface EmulatorProcess {
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  stats(): Promise<EmulatorStats>;
  close(): Promise<void>;
}

/**
 * The emulator in a process of its own (`prism mock-api`), as a real API is: its arrival times
 * are not delayed by the work of the process that drives it (a node, a test). The demo and the
 * multi-node tests use it; an emulator in the node's own process timed arrivals late by up to
 * ~25 ms while the node was busy, and counted violations the platform would not have seen.
 */
export async function spawnEmulator(config: Partial<EmulatorConfig>): Promise<EmulatorProcess> {
  const port = await freePort();
  const file = join(tmpdir(), `prism-emulator-${port}.json`);
  await writeFile(file, JSON.stringify({ ...defaultEmulatorConfig(), ...config }));
  const child = spawn(
    process.execPath,
    [join(root, 'src/cli/main.ts'), 'mock-api', '--port', String(port), '--config', file],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  // The emulator is the referee: it times each arrival when its event loop gets to it, so a
  // starved emulator squeezes arrivals together (its loop stalled for up to 35 ms on 2 cores
  // with three nodes busy). A higher priority keeps its clock honest; the nodes get no help.
  try {
    if (child.pid !== undefined) setPriority(child.pid, -10);
  } catch {
    // Not allowed (not root): the emulator reports its loop delay in its stats instead.
  }
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`mock-api exited with ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    host: `127.0.0.1:${port}`,
    async stats() {
      const response = await request(`${url}/__emulator/stats`);
      return (await response.body.json()) as EmulatorStats;
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(file, { force: true });
    },
  };
}
