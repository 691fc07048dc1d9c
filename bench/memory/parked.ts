/**
 * What a parked job costs a real node: the heap and buffers one more held job adds, through the
 * whole path (JetStream pull, JobSource, router, the key's throttle actor), so that an operator
 * can size `node.maxParked` in bytes. One node in this process, a real nats-server and the
 * emulator (test/helpers/prism-harness.ts).
 *
 *   npm run bench:parked [-- --keys 2000 --jobs 5]
 *
 * Phase 1: each key makes one call (limit 1 per 50 s) and goes idle; measured after full GCs.
 * Phase 2: `--jobs` more jobs per key arrive; each key's next slot is ~50 s away, so they all
 * park (none is handed back: a wait under a minute is held). Measured again; the difference
 * divided by the parked jobs is what one costs. Prints one JSON line.
 */
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import { startHarness } from '../../test/helpers/prism-harness.ts';
import { until } from '../throttle/measure.ts';

const { values } = parseArgs({
  options: { keys: { type: 'string', default: '2000' }, jobs: { type: 'string', default: '5' } },
});
const KEYS = Number(values.keys);
const JOBS = Number(values.jobs);
if (globalThis.gc === undefined) throw new Error('run with node --expose-gc');
const gc: () => void = globalThis.gc;

/** Heap and ArrayBuffer bytes after full collections. */
async function settledMemory(): Promise<{ heap: number; buffers: number }> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
  }
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heap: heapUsed, buffers: arrayBuffers };
}

const h = await startHarness({ latencyMs: 1 });
try {
  const node = await h.startNode(
    {
      node: {
        concurrency: 64,
        maxParked: KEYS * JOBS + 1_000,
        maxParkedPerKey: JOBS + 10,
        passivateAfter: '1h',
      },
      sources: {
        meta: {
          allowHosts: [h.host],
          limits: [{ key: '{source}/{account}', limit: 1, per: '50s' }],
          apis: { insights: {} },
        },
      },
    },
    // The harness's default keeps every log line in memory, which would count here.
    { log: pino({ level: 'silent' }) },
  );
  const publishAll = async (round: number, perKey: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let k = 0; k < KEYS; k += 250)
      ids.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(250, KEYS - k) * perKey }, (_, i) => {
            const key = k + Math.floor(i / perKey);
            return h.publish({
              id: `r${round}-${key}-${i % perKey}`,
              source: 'meta',
              api: 'insights',
              account: `act_${key}`,
              request: {
                url: `http://${h.host}/meta/act_${key}/insights`,
                query: { date_preset: 'yesterday' },
              },
              meta: { date: '2026-12-05' },
            });
          }),
        )),
      );
    return ids;
  };

  await h.waitFor(await publishAll(1, 1), 120_000);
  const idle = await settledMemory();
  await publishAll(2, JOBS);
  await until(() => node.snapshot().throttles.parked === KEYS * JOBS, 45_000, `${KEYS * JOBS} parked jobs`);
  const parkedAt = Date.now();
  const parked = await settledMemory();
  // For finding what a parked job holds: PARKED_HEAP_SNAPSHOT=file.heapsnapshot
  if (process.env.PARKED_HEAP_SNAPSHOT) writeHeapSnapshot(process.env.PARKED_HEAP_SNAPSHOT);
  const snapshot = node.snapshot();
  const jobs = KEYS * JOBS;
  console.log(
    JSON.stringify({
      keys: KEYS,
      parkedJobs: snapshot.throttles.parked,
      held: snapshot.jobs.held,
      spilled: snapshot.jobs.spilled,
      heapPerParkedJob: Math.round((parked.heap - idle.heap) / jobs),
      buffersPerParkedJob: Math.round((parked.buffers - idle.buffers) / jobs),
      measuredWithinMs: Date.now() - parkedAt,
    }),
  );
} finally {
  await h.close();
}
