/**
 * Contender "prism": the node's real throttle path. Real nact actors (src/actors/nact-typed.ts),
 * one real throttle actor per key (spawnThrottle) under a silent supervisor, the real
 * MemoryLedger and Scheduler. Only the collector pool is a stand-in for the pool and its
 * collectors: as collect-page does, it takes a slot again when the call reached it more than
 * half the margin after it was reserved (or hands the call back to wait, 'requeue'), then the
 * call leaves: it notes the dispatch time, counts the slot from then (markSent), brings the key
 * a new job (as the router would) and ends the call at once.
 *
 * Keys arrive through the real router (spawnRouter), which spawns each key's throttle on demand.
 *
 *   node --expose-gc bench/throttle/prism.ts --mode run|idle|passivated|cold|harness --keys N --duration-ms MS
 *        [--margin-ms MS] [--jobs light|real]
 *
 * `--jobs real` gives each job what a node holds for one (its own job object, request and strings,
 * its payload's text and a reply subject, as `npm run bench:parked` counts them) instead of
 * the light stand-ins every contender shares (a Work and a small message, the key's job object
 * shared). Not one of the reported runs: what a real node's per-job objects add.
 */
import pino from 'pino';
import {
  spawnActor,
  spawnSupervisor,
  startActorSystem,
  stopActor,
  stopActorSystem,
  tell,
} from '../../src/actors/nact-typed.ts';
import type { RouterRef } from '../../src/actors/refs.ts';
import { spawnRouter } from '../../src/actors/router.ts';
import type { NodeServices } from '../../src/actors/services.ts';
import { CALL_ENDED, EnqueueMessage } from '../../src/actors/throttle.ts';
import { ThrottleRegistry } from '../../src/actors/throttle-registry.ts';
import type { JobMessage } from '../../src/bus/job-message.ts';
import { CredentialStore } from '../../src/config/credentials.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import type { LimitCheck, Reservation } from '../../src/limits/ledger.ts';
import { limitChecksFor, templateVars } from '../../src/limits/limit-keys.ts';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import type { Job } from '../../src/messages/job.ts';
import type { PoolMessage } from '../../src/messages/pool-messages.ts';
import { throttleKey } from '../../src/messages/subject.ts';
import type { Work } from '../../src/messages/work.ts';
import { NodeStats } from '../../src/runtime/node-stats.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { benchJob, finish, idleMemory, now, readWorkload, Recorder, timedRun, until } from './measure.ts';

const { mode, workload } = readWorkload(process.argv.slice(2));
const marginArg = process.argv.indexOf('--margin-ms');
const jobsArg = process.argv.indexOf('--jobs');
const realJobs = jobsArg > 0 && process.argv[jobsArg + 1] === 'real';
const config = ConfigSchema.parse({
  node: {
    ledger: 'memory',
    // No key passivates during the run: every key is a live throttle actor throughout. The
    // passivated mode measures what an idle key costs once its actor has stopped.
    passivateAfter: mode === 'passivated' ? '200ms' : '1h',
    ...(marginArg > 0 ? { limitMargin: Number(process.argv[marginArg + 1]) } : {}),
  },
  sources: {
    bench: {
      allowHosts: ['api.example.com'],
      limits: [{ key: '{source}/{account}', limit: 1, per: workload.windowMs }],
      apis: { report: {} },
    },
  },
});
const marginMs = config.node.limitMargin;
const source = config.sources.bench!;
const api = source.apis.report!;

const EMPTY = new Uint8Array(0);

/** A JetStream message stand-in: ack, nak and working only count. */
class BenchMessage implements JobMessage {
  static acks = 0;
  static naks = 0;
  static workings = 0;
  readonly keyIndex: number;
  readonly subject: string;
  readonly data: string | Uint8Array = EMPTY;
  readonly msgId = undefined;
  readonly deliveryCount = 1;
  readonly streamSeq = 0;
  settled = false;
  constructor(keyIndex: number, subject: string) {
    this.keyIndex = keyIndex;
    this.subject = subject;
  }
  async ack(): Promise<void> {
    BenchMessage.acks++;
    this.settled = true;
  }
  nak(): void {
    BenchMessage.naks++;
    this.settled = true;
  }
  working(): void {
    BenchMessage.workings++;
  }
}

/** A message as a node holds it (NatsJobMessage): its payload's text and a reply subject. */
class RealBenchMessage extends BenchMessage {
  static delivered = 0;
  override readonly data: string;
  readonly reply: string;
  constructor(keyIndex: number, subject: string) {
    super(keyIndex, subject);
    const seq = ++RealBenchMessage.delivered;
    // A string of its own, as a TextDecoder makes it (~260 characters).
    this.data = JSON.stringify({ id: `bench-${keyIndex}-${seq}`, pad: 'x'.repeat(230) });
    this.reply = `$JS.ACK.PRISM_JOBS.prism-nodes.1.${seq}.${seq}.${Date.now()}000000.${keyIndex}`;
  }
}

/** Key `index`'s job as the router parses it from a message: its own objects and strings. */
function parsedJob(index: number): Job {
  const job = benchJob(index);
  return {
    ...job,
    id: `${job.id}-${RealBenchMessage.delivered}`,
    account: `act_${index}`,
    request: {
      ...job.request,
      url: `${job.request.url}?account=act_${index}`,
      query: { date: '2026-12-05' },
      headers: {},
    },
    meta: { date: '2026-12-05' },
  };
}

/** What a key's jobs share (the router computes these per job; the values are the same). */
interface KeyJobs {
  job: Job;
  key: string;
  subject: string;
  checks: LimitCheck[];
}

function keyJobs(index: number): KeyJobs {
  const job = benchJob(index);
  const vars = templateVars(job, 'bench');
  const checks = limitChecksFor(source, api, vars);
  if (!checks.ok) throw new Error(checks.reason);
  return {
    job,
    key: throttleKey(job),
    subject: `prism.jobs.bench.report.${job.account}`,
    checks: checks.checks,
  };
}

function newWork(index: number, shared: KeyJobs, at: number): Work {
  const job = realJobs ? parsedJob(index) : shared.job;
  return {
    job,
    key: realJobs ? throttleKey(job) : shared.key,
    message: realJobs ? new RealBenchMessage(index, shared.subject) : new BenchMessage(index, shared.subject),
    checks: shared.checks,
    pauseKeys: undefined,
    attempt: 1,
    page: 0,
    request: job.request,
    objects: undefined,
    startedAt: at,
    throttled: 0,
    reservation: undefined,
    reservedAt: undefined,
    reservedChecks: undefined,
    lastStatus: undefined,
    nextInLine: undefined,
  };
}

/** Services the throttle path never touches: any use fails loudly instead of passing silently. */
function unused<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get: (_target, property) => {
      throw new Error(`the throttle benchmark does not provide ${name}.${String(property)}`);
    },
  });
}

const stats = new NodeStats();
const scheduler = new Scheduler(now);
const services: NodeServices = {
  config,
  nodeName: 'bench',
  log: pino({ level: 'warn' }),
  ledger: new MemoryLedger({ marginMs }),
  scheduler,
  http: unused('http'),
  storage: unused('storage'),
  publisher: unused('publisher'),
  attempts: unused('attempts'),
  checkpoints: unused('checkpoints'),
  credentials: new CredentialStore(config, {}),
  stats,
  now,
};

const recorder = new Recorder(workload.keys, workload.windowMs, marginMs, workload.steadyAfterMs);
const refill = mode === 'run';
const shared: KeyJobs[] = [];

// The node's actor tree (src/system.ts), minus NATS, the collectors and metrics.
const system = startActorSystem('prism-bench');
const supervisor = spawnSupervisor(system, 'throttles', (error) => {
  console.error('a throttle actor was stopped after repeated crashes', error);
});
type CallMessage = Extract<PoolMessage, { type: 'call' }>;

/** The call leaves at `at` (now): what collect-page does when undici writes the request, then the reply. */
function send({ work, replyTo }: CallMessage, at: number): void {
  // The slot counts from the real send time (markSent, as in collect-page's onSend).
  if (work.reservation !== undefined && at > (work.reservedAt ?? at))
    void services.ledger.markSent(work.reservation, work.reservedChecks ?? work.checks, at);
  const benchMessage = work.message as BenchMessage;
  recorder.dispatch(benchMessage.keyIndex, at);
  void benchMessage.ack();
  // The key's next job goes straight to its throttle (in a node the router parses it first).
  if (refill)
    tell(replyTo, new EnqueueMessage(newWork(benchMessage.keyIndex, shared[benchMessage.keyIndex]!, at)));
  tell(replyTo, CALL_ENDED);
}

/** collect-page's retakeLateSlot: a slot taken more than half the margin ago is taken again now. */
function retakeThenSend(message: CallMessage, reservation: number): void | Promise<void> {
  const { work } = message;
  const at = now();
  const slot = services.ledger.retake(reservation, work.reservedChecks ?? work.checks, at);
  if (slot instanceof Promise) return slot.then((answer) => sendRetaken(message, answer, at));
  sendRetaken(message, slot, at);
}

function sendRetaken(message: CallMessage, slot: Reservation, at: number): void {
  const { work, replyTo } = message;
  if (!slot.granted) {
    work.reservation = undefined;
    stats.lapsedSlots++;
    tell(replyTo, { type: 'requeue', work });
    return;
  }
  work.reservation = slot.id;
  work.reservedAt = slot.at;
  send(message, at);
}

const pool = spawnActor<undefined, PoolMessage>(system, {
  name: 'collector-pool',
  initialState: () => undefined,
  receive: (state, message) => {
    if (message.type !== 'call') return state;
    const { work } = message;
    const at = now();
    if (
      work.reservation !== undefined &&
      work.reservedAt !== undefined &&
      at - work.reservedAt > marginMs / 2
    ) {
      const retaken = retakeThenSend(message, work.reservation);
      return retaken === undefined ? state : retaken.then(() => state);
    }
    send(message, at);
    return state;
  },
  supervision: {
    restart: 'resume',
    backoffBaseMs: 10,
    backoffMaxMs: 1_000,
    maxCrashes: 100,
    windowMs: 60_000,
    onCrash: ({ error }) => console.error('collector-pool crashed', error),
  },
});

// The node's own wiring of throttle actors (src/actors/throttle-registry.ts, as src/system.ts).
const throttles = new ThrottleRegistry(supervisor, services, pool);
const router: RouterRef = spawnRouter(system, {
  services,
  spawnThrottle: throttles.spawn,
  directory: throttles.directory,
});
throttles.router = router;

/** --mode harness: the jobs the harness builds, kept here instead of reaching the router. */
const dropped: Work[][] = [];

/** A key's first jobs reach the router, which spawns the key's throttle actor on demand. */
function arrive(index: number, jobs: number): void {
  const keyShared = keyJobs(index);
  // Only the refill needs them later; an idle key must not be charged for the harness's copy.
  if (refill) shared[index] = keyShared;
  recorder.arrive(index, now());
  const works: Work[] = [];
  const at = now();
  for (let i = 0; i < jobs; i++) works.push(newWork(index, keyShared, at));
  if (mode !== 'harness') tell(router, { type: 'reroute', works });
  else {
    // Kept alive, as the node would keep them, and counted as if each key had made its call.
    dropped.push(works);
    recorder.calls++;
  }
}

function shutDown(): void {
  scheduler.stop();
  for (const ref of throttles.refs()) stopActor(ref);
  stopActorSystem(system);
}

/**
 * --mode cold: what a new key costs the node. Hands every key (with its jobs) to the router in one
 * loop, as a node that starts against a deep backlog gets them, and waits for every key's first
 * call: wall time and CPU per key, on stdout. Not one of the reported runs; for comparing changes.
 * --mode harness: the same with the node left out (the jobs are built and kept, not routed): how
 * much of --mode cold's figure is the benchmark's own job building.
 */
async function coldStart(keys: number): Promise<void> {
  const cpuBefore = process.cpuUsage();
  const start = now();
  for (let index = 0; index < keys; index++) arrive(index, workload.backlog);
  const handedOver = now();
  await until(() => recorder.calls >= keys, 300_000, 'every key to make its first call');
  const done = now();
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    JSON.stringify({
      keys,
      handOverMs: Math.round(handedOver - start),
      firstCallsMs: Math.round(done - start),
      wallPerKeyUs: Number((((done - start) * 1_000) / keys).toFixed(2)),
      cpuPerKeyUs: Number(((cpu.user + cpu.system) / keys).toFixed(2)),
    }),
  );
  shutDown();
  process.exit(0);
}

const settings = `limit 1/${workload.windowMs}ms per key, limitMargin ${marginMs} ms, passivateAfter ${config.node.passivateAfter / 1000} s`;
if (mode === 'cold' || mode === 'harness') {
  await coldStart(workload.keys);
} else if (mode === 'run') {
  const result = await timedRun(workload, recorder, (index) => arrive(index, workload.backlog), {
    contender: marginMs === 25 ? 'prism' : `prism (limitMargin ${marginMs} ms)`,
    settings,
    marginMs,
  });
  result.lapsedSlots = stats.lapsedSlots;
  shutDown();
  finish(result);
} else {
  const result = await idleMemory(
    workload.keys,
    async (keys) => {
      for (let index = 0; index < keys; index++) arrive(index, 1);
      await until(() => recorder.calls >= keys, 120_000, 'every key to make its call');
      if (mode === 'idle') {
        // Each call-ended reached its actor: every key is idle (nothing parked or in flight).
        await until(() => [...stats.keys.values()].every((s) => s.inFlight === 0), 60_000, 'idle keys');
      } else {
        // Every key passivated: its actor stopped, its limit state stays in the ledger.
        await until(() => throttles.size === 0, 120_000, 'every key to passivate');
      }
    },
    {
      contender: 'prism',
      settings: mode === 'idle' ? `${settings}, live actors` : `${settings}, passivated`,
    },
  );
  shutDown();
  finish(result);
}
