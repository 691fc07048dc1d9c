/**
 * The V8 flags a Prism node runs with (bin/prism.js, the npm scripts, the Dockerfile, the tests
 * and the benchmarks all pass them; `prism node` warns when they are missing).
 *
 * `--max-semi-space-size=1` (MB; V8's default grows to 16): every parked job lives about as long
 * as its key's spacing (a second at 1 call/s), so each young-generation collection copies every
 * job that arrived since the last one, and the whole node stops meanwhile. A small young
 * generation collects often, for well under a millisecond each time instead of several.
 *
 * `--v8-pool-size=1`: V8's own threads (concurrent marking, parallel scavenges, background
 * compiles). Node starts four; on the two cores of these machines they took the CPU from the
 * node's one thread whenever a full collection marked (background marking logged 624 ms within
 * 171 ms of wall time), and the node fell behind its calls. On a machine with more cores, give
 * cores - 1: a value of your own is not reported as missing.
 *
 * Measured with bench/throttle at 100,000 keys of 1 call/s (30 s runs, alternating, the share
 * of calls later than 5 ms): the two flags together 1.1-5.2% (mean 2.8% over 3 runs, 3.3% over
 * 4 earlier ones), `--max-semi-space-size=8` alone 2.8-8.6% (mean 5.4%), 8 MB with one V8 thread
 * 2.9-6.3%. What they cost end to end (bench/e2e, 1000 jobs of 1 s, 2 x 3 trials alternating):
 * ~5% more wall time (median 1.64 and 1.71 s against 1.57 and 1.61 s), ~7% more CPU, ~12% less
 * RSS (165 against 187 MiB).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=1'];

/** The flags of NODE_FLAGS this process was not started with (on its command line or NODE_OPTIONS). */
export function missingNodeFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map((flag) => flag.split('=')[0]));
  return NODE_FLAGS.filter((flag) => !given.has(flag.split('=')[0]));
}
