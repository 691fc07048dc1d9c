import { appendFileSync, readFileSync, rmSync } from 'node:fs';

/**
 * Processes the tests start (`prism node`, nats-server) note their pids in a file the global
 * setup names (PRISM_TEST_CHILDREN): a test that fails halfway or times out may leave one
 * running, as vitest ends its workers without their exit handlers, and a leftover node reconnects
 * for ever, so a later run whose nats-server gets the same port would see a node it did not start
 * take its jobs. The global teardown stops what is still running.
 */
export function noteChild(pid: number | undefined): void {
  const registry = process.env.PRISM_TEST_CHILDREN;
  if (registry !== undefined && pid !== undefined) appendFileSync(registry, `${pid}\n`);
}

/** Stops each noted process still running, if it is still one of ours (a pid can be reused). */
export function stopLeftoverChildren(registry: string): void {
  let pids: string[];
  try {
    pids = readFileSync(registry, 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const ours =
        command.some((arg) => arg.endsWith('src/cli/main.ts')) ||
        (command[0]?.endsWith('nats-server') === true && command.includes('127.0.0.1'));
      if (ours) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  rmSync(registry, { force: true });
}
