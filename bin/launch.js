// What bin/prism.js does on the Node.js it finds. Plain JavaScript on purpose: it must run on a
// Node.js too old for Prism (the machine's own `node` may be 20) to say so clearly, instead of
// failing on the first `.ts` import with ERR_UNKNOWN_FILE_EXTENSION.

/**
 * The oldest Node.js Prism supports (package.json `engines`).
 * @type {readonly [number, number]}
 */
export const MIN_NODE = [22, 12];

/** The option that switches type stripping on where it is off by default. */
export const STRIP_TYPES = '--experimental-strip-types';

/**
 * How to start Prism's TypeScript sources on Node.js `version` (process.versions.node), given
 * `process.features.typescript` ('strip' or 'transform' when Node strips types, false or
 * undefined when it does not):
 * - 'run': import them (Node 22.18+, 23.6+: type stripping is on by default);
 * - 'flag': start again with --experimental-strip-types (22.12 to 22.17 have it, off by default);
 * - 'too-old': refuse, with `message`.
 * `execArgv` is the Node.js options given: once the flag is among them, starting again would
 * not help.
 *
 * @param {string} version
 * @param {string | boolean | undefined} typescript
 * @param {readonly string[]} execArgv
 * @returns {{ kind: 'run' } | { kind: 'flag' } | { kind: 'too-old'; message: string }}
 */
export function launchPlan(version, typescript, execArgv) {
  if (typescript) return { kind: 'run' };
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [minMajor, minMinor] = MIN_NODE;
  const supported = major > minMajor || (major === minMajor && minor >= minMinor);
  if (supported && !execArgv.includes(STRIP_TYPES)) return { kind: 'flag' };
  return {
    kind: 'too-old',
    message:
      `prism: needs Node.js ${minMajor}.${minMinor} or later with TypeScript type stripping (24 LTS recommended); this is ${version}.\n` +
      'In a checkout of Prism, `npm run prism -- <command>` runs it on the Node.js 24 that `npm ci` installs.',
  };
}
