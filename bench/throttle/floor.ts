/**
 * Not Prism: the floor this machine allows for the throttle benchmark's workload. A bare
 * throttle, one limit of 1 call per window (+ margin) per key, with none of a node's features
 * (no actors, no supervision, no pauses, no caps, no shared scopes): per-key numbers in typed
 * arrays, parked jobs linked through their Work, a timing wheel of 1 ms slots linked through key
 * numbers, and a call that "leaves" as soon as its key is due. It allocates per job what the
 * Prism contender's harness allocates (a Work and a message stand-in) and records with the same
 * Recorder, so the two are measured alike.
 *
 * It answers two questions the Prism figures alone cannot: is the target (p99 lateness under
 * 5 ms at 100,000 keys) within reach of a JS process on this machine at all, and which of a real
 * node's costs push it over. Three switches add them back one by one:
 *   --state    a 17-field object per key, read and written on every call (a KeyThrottle)
 *   --actors   an actor-like object with a mailbox per key, and every call through a run queue
 *              that runs in setImmediate rounds (as src/actors/nact-typed.ts does)
 *   --ledger   the real MemoryLedger (reserve, then markSent) instead of one subtraction
 *
 *   node --expose-gc --max-semi-space-size=1 --v8-pool-size=1 bench/throttle/floor.ts \
 *     --mode run --keys 100000 --duration-ms 30000 [--state] [--actors] [--ledger]
 */
import Denque from 'denque';
import { ConfigSchema } from '../../src/config/schema.ts';
import type { LimitCheck } from '../../src/limits/ledger.ts';
import { limitChecksFor, templateVars } from '../../src/limits/limit-keys.ts';
import { MemoryLedger } from '../../src/limits/memory-ledger.ts';
import type { Job } from '../../src/messages/job.ts';
import { benchJob, finish, now, readWorkload, Recorder, timedRun } from './measure.ts';

const switches = new Set(process.argv.filter((arg) => ['--state', '--actors', '--ledger'].includes(arg)));
const withState = switches.has('--state');
const withActors = switches.has('--actors');
const withLedger = switches.has('--ledger');
const { workload } = readWorkload(process.argv.slice(2).filter((arg) => !switches.has(arg)));
const KEYS = workload.keys;
const WINDOW_MS = workload.windowMs;
const MARGIN_MS = 25;

const config = ConfigSchema.parse({
  node: { ledger: 'memory' },
  sources: {
    bench: {
      allowHosts: ['api.example.com'],
      limits: [{ key: '{source}/{account}', limit: 1, per: WINDOW_MS }],
      apis: { report: {} },
    },
  },
});
const source = config.sources.bench!;
const api = source.apis.report!;
const ledger = new MemoryLedger({ marginMs: MARGIN_MS });

const EMPTY = new Uint8Array(0);
/** As the Prism contender's BenchMessage. */
class BenchMessage {
  static acks = 0;
  readonly keyIndex: number;
  readonly subject: string;
  readonly data = EMPTY;
  settled = false;
  constructor(keyIndex: number, subject: string) {
    this.keyIndex = keyIndex;
    this.subject = subject;
  }
  ack(): void {
    BenchMessage.acks++;
    this.settled = true;
  }
}

/** As a node's Work, with as many fields. */
class Work {
  job: Job;
  key: string;
  message: BenchMessage;
  checks: LimitCheck[];
  pauseKeys = undefined;
  attempt = 1;
  page = 0;
  request: unknown;
  objects = undefined;
  startedAt: number;
  throttled = 0;
  reservation = 0;
  reservedAt = 0;
  reservedChecks = undefined;
  lastStatus = undefined;
  nextInLine: Work | undefined = undefined;
  constructor(job: Job, key: string, message: BenchMessage, checks: LimitCheck[], at: number) {
    this.job = job;
    this.key = key;
    this.message = message;
    this.checks = checks;
    this.request = job.request;
    this.startedAt = at;
  }
}

/** --state: as many fields as a KeyThrottle, touched on every call. */
class KeyState {
  key: string;
  inFlight = 0;
  concurrency = 1;
  wakeAt = Number.POSITIVE_INFINITY;
  notBefore = 0;
  notBeforeChecks = undefined;
  keyChecks = undefined;
  notBeforeWhy = undefined;
  idleSince: number;
  received = 0;
  draining = false;
  waitUntilAt = Number.NaN;
  waitWhy = undefined;
  pausedUntil = undefined;
  pauseReason = undefined;
  firstInLine = undefined;
  lastInLine = undefined;
  constructor(key: string, at: number) {
    this.key = key;
    this.idleSince = at;
  }
}

/** --actors: an actor's bookkeeping and mailbox. */
class ActorStandIn {
  readonly key: number;
  busy = false;
  readonly mailbox = new Denque<number>();
  constructor(key: number) {
    this.key = key;
  }
}

// What the harness keeps per key, as the Prism contender's does (its KeyJobs).
const jobs: Job[] = [];
const subjects: string[] = [];
const throttleKeys: string[] = [];
const checksOf: LimitCheck[][] = [];
const states: KeyState[] = [];
const actors: ActorStandIn[] = [];
const keyIndex = new Map<string, number>();

// Per key: the last call's time and the line of parked jobs.
const lastSent = new Float64Array(KEYS).fill(Number.NEGATIVE_INFINITY);
const firstInLine: Array<Work | undefined> = new Array<Work | undefined>(KEYS).fill(undefined);
const lastInLine: Array<Work | undefined> = new Array<Work | undefined>(KEYS).fill(undefined);

// The timing wheel: slot `ms & MASK` lists the keys due at that millisecond, linked by number.
const WHEEL_MS = 4_096;
const MASK = WHEEL_MS - 1;
const slotFirst = new Int32Array(WHEEL_MS).fill(-1);
const slotLast = new Int32Array(WHEEL_MS).fill(-1);
const nextInSlot = new Int32Array(KEYS).fill(-1);
const inWheel = new Uint8Array(KEYS);
let waiting = 0;
let cursor = Math.floor(now());
let timer: NodeJS.Timeout | undefined;
let timerAt = Number.POSITIVE_INFINITY;

const recorder = new Recorder(KEYS, WINDOW_MS, MARGIN_MS, workload.steadyAfterMs);

function wakeAt(key: number, at: number): void {
  // Never before `at`: the slot of the millisecond at or after it.
  const ms = Math.max(cursor, Math.ceil(at));
  const slot = ms & MASK;
  nextInSlot[key] = -1;
  if (slotLast[slot]! < 0) slotFirst[slot] = key;
  else nextInSlot[slotLast[slot]!] = key;
  slotLast[slot] = key;
  inWheel[key] = 1;
  waiting++;
  if (ms < timerAt) arm(ms);
}

function arm(ms: number): void {
  if (timer !== undefined) clearTimeout(timer);
  timerAt = ms;
  timer = setTimeout(fire, Math.max(0, ms - now()));
}

function fire(): void {
  timer = undefined;
  timerAt = Number.POSITIVE_INFINITY;
  const nowMs = Math.floor(now());
  while (cursor <= nowMs && waiting > 0) {
    const slot = cursor & MASK;
    // A key may be asked into this very slot again while it runs.
    while (slotFirst[slot]! >= 0) {
      let key = slotFirst[slot]!;
      slotFirst[slot] = -1;
      slotLast[slot] = -1;
      while (key >= 0) {
        const next = nextInSlot[key]!;
        inWheel[key] = 0;
        waiting--;
        deliver(key);
        key = next;
      }
    }
    cursor++;
  }
  if (cursor <= nowMs) cursor = nowMs + 1;
  if (waiting > 0) {
    let ms = cursor;
    while (slotFirst[ms & MASK]! < 0) ms++;
    arm(ms);
  }
}

// --actors: one run queue for all, run in rounds from one setImmediate, up to 4 ms a turn.
let runQueue: ActorStandIn[] = [];
let runScheduled = false;

function deliver(key: number): void {
  if (!withActors) {
    pump(key);
    return;
  }
  const actor = actors[key]!;
  if (actor.busy) {
    actor.mailbox.push(key);
    return;
  }
  actor.busy = true;
  runQueue.push(actor);
  if (!runScheduled) {
    runScheduled = true;
    setImmediate(runQueued);
  }
}

function runQueued(): void {
  const start = now();
  do {
    const round = runQueue;
    runQueue = [];
    for (const actor of round) {
      pump(actor.key);
      while (actor.mailbox.length > 0) {
        actor.mailbox.shift();
        pump(actor.key);
      }
      actor.busy = false;
    }
  } while (runQueue.length > 0 && now() - start < 4);
  runScheduled = false;
  if (runQueue.length > 0) {
    runScheduled = true;
    setImmediate(runQueued);
  }
}

/** The key's first parked job leaves if the key is due, else the key waits for its time. */
function pump(key: number): void {
  const work = firstInLine[key];
  if (work === undefined) return;
  const state = withState ? states[key] : undefined;
  if (state !== undefined) {
    state.received++;
    if (state.draining || state.inFlight >= state.concurrency) return;
  }
  const at = now();
  if (withLedger) {
    const slot = ledger.reserve(work.checks, at);
    if (!slot.granted) {
      if (inWheel[key] === 0) wakeAt(key, slot.retryAt);
      if (state !== undefined) state.waitUntilAt = state.notBefore = slot.retryAt;
      return;
    }
    work.reservation = slot.id;
    work.reservedAt = slot.at;
  } else {
    const allowedAt = lastSent[key]! + WINDOW_MS + MARGIN_MS;
    if (at < allowedAt) {
      if (inWheel[key] === 0) wakeAt(key, allowedAt);
      return;
    }
  }
  firstInLine[key] = work.nextInLine;
  if (work.nextInLine === undefined) lastInLine[key] = undefined;
  work.nextInLine = undefined;
  // The call leaves now: counted from now, recorded, acked; the key gets its next job.
  const sentAt = now();
  lastSent[key] = sentAt;
  if (withLedger) ledger.markSent(work.reservation, work.checks, sentAt);
  recorder.dispatch(key, sentAt);
  work.message.ack();
  park(
    key,
    new Work(jobs[key]!, throttleKeys[key]!, new BenchMessage(key, subjects[key]!), checksOf[key]!, sentAt),
  );
  if (state !== undefined) {
    state.idleSince = sentAt;
    state.waitUntilAt = Number.NaN;
  }
  if (inWheel[key] === 0) wakeAt(key, sentAt + WINDOW_MS + MARGIN_MS);
}

function park(key: number, work: Work): void {
  const last = lastInLine[key];
  if (last === undefined) firstInLine[key] = work;
  else last.nextInLine = work;
  lastInLine[key] = work;
}

// Arrivals are handled in the next setImmediate, as a node's router hands jobs on.
let arrived: number[] = [];
let arrivalsScheduled = false;

function runArrivals(): void {
  arrivalsScheduled = false;
  const keys = arrived;
  arrived = [];
  for (const key of keys) deliver(key);
}

/** A key's first jobs arrive: the same objects the Prism contender's harness builds. */
function arrive(index: number): void {
  const job = benchJob(index);
  const account = job.account;
  const key = `bench.report.${account}`;
  const checks = limitChecksFor(source, api, templateVars(job, 'bench'));
  if (!checks.ok) throw new Error(checks.reason);
  jobs[index] = job;
  throttleKeys[index] = key;
  subjects[index] = `prism.jobs.bench.report.${account}`;
  checksOf[index] = checks.checks;
  const at = now();
  recorder.arrive(index, at);
  if (!keyIndex.has(key)) {
    keyIndex.set(key, index);
    if (withState) states[index] = new KeyState(key, at);
    if (withActors) actors[index] = new ActorStandIn(index);
  }
  for (let i = 0; i < workload.backlog; i++)
    park(index, new Work(job, key, new BenchMessage(index, subjects[index]!), checks.checks, at));
  arrived.push(index);
  if (!arrivalsScheduled) {
    arrivalsScheduled = true;
    setImmediate(runArrivals);
  }
}

const added = [...switches].map((s) => s.slice(2)).join(', ');
const result = await timedRun(workload, recorder, arrive, {
  contender: `floor${added === '' ? '' : ` + ${added}`}`,
  settings: `limit 1/${WINDOW_MS}ms per key, margin ${MARGIN_MS} ms`,
  marginMs: MARGIN_MS,
});
if (timer !== undefined) clearTimeout(timer);
finish(result);
