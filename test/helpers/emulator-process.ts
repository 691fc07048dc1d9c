import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setPriority } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import type { EmulatorConfig, EmulatorStats } from '../../src/emulator/types.ts';
import { freePort } from '../../src/runtime/local-nats.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface EmulatorProcess {
  url: string;
  host: string;
  stats(): Promise<EmulatorStats>;
  close(): Promise<void>;
}

/**
 * The emulator in a process of its own (`prism mock-api`), as a real API is: its arrival times
 * are not delayed by the test process's own work.
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
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
