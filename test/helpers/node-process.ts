import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import type { PrismConfigInput } from '../../src/config/schema.ts';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { noteChild } from './children.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface NodeProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Log lines so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** A real `prism node` process (so SIGKILL and SIGTERM are real), logging JSON to a file. */
export async function spawnNodeProcess(options: {
  name: string;
  config: PrismConfigInput;
  natsUrl: string;
  storage: string;
  dir: string;
  env?: NodeJS.ProcessEnv;
}): Promise<NodeProcess> {
  const configFile = join(options.dir, `${options.name}.json`);
  const logFile = join(options.dir, `${options.name}.log`);
  await writeFile(configFile, JSON.stringify(options.config));
  const child = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      join(root, 'src/cli/main.ts'),
      'node',
      '--config',
      configFile,
      '--nats',
      options.natsUrl,
      '--storage',
      options.storage,
      '--name',
      options.name,
    ],
    { env: { ...process.env, PRISM_LOG_LEVEL: 'debug', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  noteChild(child.pid);
  const out = createWriteStream(logFile);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = once(child, 'exit').then(([code, signal]) => (code as number | null) ?? (signal as string));
  process.once('exit', () => child.kill('SIGKILL'));
  const text = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const logs = (): Array<Record<string, unknown>> =>
    text()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const started = Date.now();
  // A sharded node is up when all its shards are.
  const upMessage = (options.config.node?.shards ?? 1) > 1 ? 'sharded node started' : 'node started';
  while (!logs().some((l) => l.msg === upMessage)) {
    if (child.exitCode !== null) throw new Error(`node ${options.name} exited at start:\n${text()}`);
    if (Date.now() - started > 30_000) throw new Error(`node ${options.name} did not start:\n${text()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: options.name, child, logFile, logs, signal: (s) => child.kill(s), exited };
}
