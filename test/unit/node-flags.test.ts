import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingNodeFlags, NODE_FLAGS } from '../../src/runtime/node-flags.ts';

const root = join(import.meta.dirname, '..', '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

describe("a node's V8 flags", () => {
  it('are passed wherever a node is started: bin/prism.js, the npm scripts and the Dockerfile', () => {
    const shebang = read('bin/prism.js').split('\n')[0];
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    const entrypoint = read('Dockerfile')
      .split('\n')
      .find((line) => line.startsWith('ENTRYPOINT'));
    for (const flag of NODE_FLAGS) {
      expect(shebang).toContain(flag);
      expect(scripts.prism).toContain(flag);
      expect(scripts.demo).toContain(flag);
      expect(entrypoint).toContain(JSON.stringify(flag));
    }
  });

  it('are found missing unless given on the command line or in NODE_OPTIONS, whatever the value', () => {
    expect(missingNodeFlags([], '')).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags([...NODE_FLAGS], '')).toEqual([]);
    expect(missingNodeFlags(['--expose-gc'], NODE_FLAGS.join(' '))).toEqual([]);
    // An operator who chose another value chose it: not reported as missing; each flag counts.
    expect(missingNodeFlags(['--max-semi-space-size=32', '--v8-pool-size=3'], '')).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=32'], '')).toEqual(['--v8-pool-size=1']);
  });
});
