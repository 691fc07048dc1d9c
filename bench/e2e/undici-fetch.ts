/**
 * The fetch floor for Node: N concurrent undici GETs (one connection each), bodies read and
 * dropped. Prints {wallSeconds, cpuSeconds, peakRssMiB, ok} as JSON.
 * Usage: node bench/e2e/undici-fetch.ts URL N
 */
import { Agent, request } from 'undici';

const [base, n] = [process.argv[2]!, Number(process.argv[3] ?? 1000)];
const agent = new Agent({ connections: null, pipelining: 1 });
const started = performance.now();
const cpu = process.cpuUsage();
let ok = 0;
await Promise.all(
  Array.from({ length: n }, async (_, i) => {
    const response = await request(`${base}/adjust/peer-${i}/report`, { dispatcher: agent });
    await response.body.arrayBuffer();
    if (response.statusCode === 200) ok++;
  }),
);
const wallSeconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
await agent.close();
console.log(
  JSON.stringify({
    wallSeconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    ok,
  }),
);
