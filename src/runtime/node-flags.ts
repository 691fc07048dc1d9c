/**
 * The V8 flags a Prism node runs with (bin/prism.js, the npm scripts, the Dockerfile, the tests
 * and the benchmarks all pass them; `prism node` warns when they are missing).
 *
 * `--max-semi-space-size=8` (MB; V8's default grows to 16): every parked job lives about as long
 * as its key's spacing (a second at 1 call/s), so each young-generation collection copies every
 * job that arrived since the last one, and the whole node stops meanwhile. A smaller young
 * generation collects more often but for less time per pause. Measured with bench/throttle at
 * 100,000 keys of 1 call/s (15 s, from 3 s on; two runs each): p99 dispatch lateness 14-16 ms
 * with the default, 3.6-4.7 ms with 8 MB, and less CPU (6.3-7.0 s against 6.7-7.5 s).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** The flags of NODE_FLAGS this process was not started with (on its command line or NODE_OPTIONS). */
export function missingNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map((flag) => flag.split('=')[0]));
  return NODE_FLAGS.filter((flag) => !given.has(flag.split('=')[0]));
}
