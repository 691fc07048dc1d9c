import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launchPlan } from '../../bin/launch.js';

const root = join(import.meta.dirname, '..', '..');
const prism = join(root, 'bin', 'prism.js');

describe('bin/prism.js on the Node.js it finds', () => {
  it('runs the sources where Node strips types, starts again with the flag where it can, else refuses', () => {
    expect(launchPlan('24.11.1', 'strip', [])).toEqual({ kind: 'run' });
    expect(launchPlan('22.18.0', 'strip', [])).toEqual({ kind: 'run' });
    expect(launchPlan('22.12.0', false, [])).toEqual({ kind: 'flag' });
    expect(launchPlan('22.17.1', false, ['--max-semi-space-size=1'])).toEqual({ kind: 'flag' });
    // Type stripping switched off on purpose on a new Node: the flag given later wins.
    expect(launchPlan('24.11.1', false, ['--no-experimental-strip-types'])).toEqual({ kind: 'flag' });
    for (const [version, features, argv] of [
      ['20.20.2', undefined, []],
      ['22.11.0', false, []],
      ['18.20.8', undefined, []],
      // Already started again with the flag and still no stripping: no loop.
      ['22.12.0', false, ['--experimental-strip-types']],
    ] as const) {
      const plan = launchPlan(version, features, argv);
      expect(plan.kind).toBe('too-old');
      expect(plan.kind === 'too-old' && plan.message).toContain(`this is ${version}`);
      expect(plan.kind === 'too-old' && plan.message).toContain('22.12 or later');
    }
  });

  it('runs the CLI on this Node.js, and again with type stripping switched on where it is off', () => {
    const direct = spawnSync(process.execPath, [prism, '--help'], { encoding: 'utf8' });
    expect(direct.status).toBe(0);
    expect(direct.stdout).toContain('Usage: prism');
    const restarted = spawnSync(process.execPath, ['--no-experimental-strip-types', prism, '--help'], {
      encoding: 'utf8',
    });
    expect(restarted.status).toBe(0);
    expect(restarted.stdout).toContain('Usage: prism');
    // The exit status of the started-again process is the command's.
    const unknown = spawnSync(process.execPath, ['--no-experimental-strip-types', prism, 'no-such-command'], {
      encoding: 'utf8',
    });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('no-such-command');
  });

  it('started again, passes SIGTERM on to the process it started and ends with it', async () => {
    const parent = spawn(process.execPath, ['--no-experimental-strip-types', prism, 'mock-api'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (found?.[1] !== undefined) resolve(found[1]);
      });
      parent.on('exit', () => reject(new Error(`exited before listening: ${out}`)));
    });
    expect((await fetch(`${url}/__emulator/stats`)).ok).toBe(true);
    const exited = new Promise<number | null>((resolve) => parent.on('exit', (code) => resolve(code)));
    parent.kill('SIGTERM');
    // The emulator closes on SIGTERM and exits 0; had the signal not reached it, the parent
    // would have died of it (143) and left the emulator listening.
    expect(await exited).toBe(0);
    // The process it started is gone too: nothing listens any more.
    await expect(fetch(`${url}/__emulator/stats`)).rejects.toThrow();
  });

  // The machines this is built on have Node 20 as their `node`: what a user meets who runs the
  // bin with it. Skipped where that Node is not there or not older than 22.
  const systemNode = '/usr/bin/node';
  const old =
    existsSync(systemNode) &&
    Number(
      spawnSync(systemNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.split('.')[0],
    ) < 22;
  it.skipIf(!old)('refuses clearly on a Node.js too old (the machine’s own node)', () => {
    const result = spawnSync(systemNode, [prism, '--help'], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('needs Node.js 22.12 or later');
    expect(result.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });
});
