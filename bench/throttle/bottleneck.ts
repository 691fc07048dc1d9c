/**
 * Contender "bottleneck": what an npm user would pick instead. One `Bottleneck.Group`, one
 * limiter per key (`group.key(key)`), `maxConcurrent: 1` (one call of a key at a time, as
 * Prism's default api concurrency) and `minTime: 1000` ("1 call per second per key"). A job
 * notes its dispatch time, brings its key a new job (as jobs keep arriving) and ends at once.
 *
 *   node --expose-gc bench/throttle/bottleneck.ts --mode run|idle|passivated --keys N --duration-ms MS
 */
import Bottleneck from 'bottleneck';
import { finish, idleMemory, now, readWorkload, Recorder, timedRun, until } from './measure.ts';

const { mode, workload } = readWorkload(process.argv.slice(2));
if (mode === 'cold') throw new Error('--mode cold measures Prism only (bench/throttle/prism.ts)');
// Group's `timeout` (default 5 min) deletes a limiter that long after its next call was allowed:
// bottleneck's passivation. The passivated mode measures an idle key after that; its cleanup
// pass waits a timer tick per limiter, so at 100,000 keys it takes minutes.
const options: Bottleneck.ConstructorOptions = {
  maxConcurrent: 1,
  minTime: workload.windowMs,
  ...(mode === 'passivated' ? { timeout: 2_000 } : {}),
};
const group = new Bottleneck.Group(options);
group.on('error', (error: unknown) => console.error('bottleneck error', error));
const recorder = new Recorder(workload.keys, workload.windowMs, 0, workload.steadyAfterMs);
const refill = mode === 'run';

const keyOf = (index: number): string => `bench/act_${index}`;

const call = (index: number): Promise<void> => {
  recorder.dispatch(index, now());
  if (refill) void group.key(keyOf(index)).schedule(() => call(index));
  return Promise.resolve();
};

function arrive(index: number, jobs: number): void {
  const limiter = group.key(keyOf(index));
  recorder.arrive(index, now());
  for (let i = 0; i < jobs; i++) void limiter.schedule(() => call(index));
}

const settings = `Group({ maxConcurrent: 1, minTime: ${workload.windowMs} }), one limiter per key`;
if (mode === 'run') {
  const result = await timedRun(workload, recorder, (index) => arrive(index, workload.backlog), {
    contender: 'bottleneck',
    settings,
    marginMs: 0,
  });
  finish(result);
} else {
  const result = await idleMemory(
    workload.keys,
    async (keys) => {
      for (let index = 0; index < keys; index++) arrive(index, 1);
      await until(() => recorder.calls >= keys, 120_000, 'every key to make its call');
      if (mode === 'idle') {
        // Let each limiter see its job done: then every key is idle (nothing queued or running).
        await until(() => group.limiters().every(({ limiter }) => limiter.empty()), 60_000, 'idle keys');
        await new Promise((resolve) => setTimeout(resolve, 200));
      } else {
        await until(() => group.keys().length === 0, 900_000, 'every limiter to be deleted');
      }
    },
    { contender: 'bottleneck', settings: mode === 'idle' ? settings : `${settings}, Group timeout 2 s` },
  );
  finish(result);
}
