#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
// The V8 flags are those of src/runtime/node-flags.ts (why: see there).
// Prism runs its TypeScript sources as they are (Node.js strips the types); no build step.
// bin/launch.js decides how on this Node.js, and refuses clearly on one too old.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { launchPlan, STRIP_TYPES } from './launch.js';

const plan = launchPlan(process.versions.node, process.features.typescript, process.execArgv);
if (plan.kind === 'run') {
  await import('../src/cli/main.ts');
} else if (plan.kind === 'flag') {
  // Node 22.12 to 22.17: the same command again, with type stripping switched on. Signals reach
  // the node (a SIGTERM drains it) and its exit status is ours.
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      STRIP_TYPES,
      '--disable-warning=ExperimentalWarning',
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit' },
  );
  const forwarded = /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP']);
  for (const signal of forwarded) process.on(signal, () => child.kill(signal));
  // Killed by a signal: exit as a shell reports it, 128 + its number.
  child.on('exit', (code, signal) =>
    process.exit(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0))),
  );
} else {
  console.error(plan.message);
  process.exitCode = 1;
}
