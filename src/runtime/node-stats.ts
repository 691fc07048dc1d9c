import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';

/** What one throttle key is doing, kept up to date by its actor; read by metrics and status. */
export interface KeyStatus {
  readonly key: string;
  readonly parked: number;
  readonly inFlight: number;
  /** When the key may call again, and why it waits (which limit, signal or pause). */
  readonly waitUntil: number | undefined;
  readonly waitReason: string | undefined;
  readonly pausedUntil: number | undefined;
  readonly pauseReason: string | undefined;
}

/** The live keys, as the metrics line and `prism status` read them. */
export interface KeyDirectory {
  readonly size: number;
  values(): Iterable<KeyStatus>;
}

const NO_KEYS: KeyDirectory = { size: 0, values: () => [] };

/**
 * The node's figures. Actors bump counters here instead of answering queries: a status request
 * must not cost a message to each of 100,000 throttle actors.
 */
export class NodeStats {
  readonly startedAt = Date.now();
  jobsReceived = 0;
  jobsDone = 0;
  jobsDeadLettered = 0;
  jobsRetried = 0;
  /** Jobs handed back to JetStream because the node or the key held enough already. */
  jobsSpilled = 0;
  calls = 0;
  callFailures = 0;
  throttleSignals = 0;
  /** Calls whose slot lapsed while they waited for a collector and had to wait for another. */
  lapsedSlots = 0;
  /** Reservations the ledger could not answer (NATS away): the key waited and tried again. */
  ledgerErrors = 0;
  pagesStored = 0;
  bytesStored = 0;
  storageRetries = 0;
  actorRestarts = 0;
  collectors = 0;
  collectorsBusy = 0;
  /** Calls that have their slots and wait for a free collector. */
  callsWaiting = 0;
  throttlesSpawned = 0;
  throttlesPassivated = 0;
  /**
   * Every live key's status: the throttle actors' own states, read where they are (the node's
   * ThrottleRegistry sets itself here), not copied into a map of its own.
   */
  keys: KeyDirectory = NO_KEYS;
  /** How long calls took, from send to the whole answer read. */
  readonly latency = new RecentSamples();
  /**
   * How long after its grant each call left (undici wrote it): event-loop lag and waiting for a
   * collector. The KV ledger's send allowance must cover it, or calls lapse (lapsedSlots).
   */
  readonly sendLag = new RecentSamples();
  /**
   * How long a collector is busy per call: the call, storing its page, and handing the job on
   * (to Settling, or back to its throttle). Much longer than `latency` means calls wait for
   * collectors because of what the collectors do besides calling.
   */
  readonly collectorTurn = new RecentSamples();
  private dispatchMark = { at: Date.now(), calls: 0 };
  /** How late the node's event loop runs its timers: what holds every call, ack and grant up. */
  private readonly loopDelay: ELDHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    this.loopDelay.enable();
  }

  /** Event-loop delay in ms since the node started (a timer armed every 10 ms fires this late). */
  loopDelayMs(): { p50: number; p99: number; max: number } {
    const ms = (ns: number): number => round(ns / 1e6);
    if (this.loopDelay.count === 0) return { p50: 0, p99: 0, max: 0 };
    return {
      p50: ms(this.loopDelay.percentile(50)),
      p99: ms(this.loopDelay.percentile(99)),
      max: ms(this.loopDelay.max),
    };
  }

  /** Calls per second since the previous call of this method. */
  takeDispatchRate(now = Date.now()): number {
    const seconds = (now - this.dispatchMark.at) / 1000;
    const rate = seconds > 0 ? (this.calls - this.dispatchMark.calls) / seconds : 0;
    this.dispatchMark = { at: now, calls: this.calls };
    return round(rate);
  }
}

/** Percentiles over the most recent samples (a ring of 4,096), and the largest since start. */
export class RecentSamples {
  private readonly ring = new Float64Array(4096);
  private count = 0;
  private largest = 0;

  record(ms: number): void {
    this.ring[this.count++ % this.ring.length] = ms;
    if (ms > this.largest) this.largest = ms;
  }

  /** p50/p95/p99/max over the ring, and `maxEver` since the node started. */
  percentiles(): { p50: number; p95: number; p99: number; max: number; maxEver: number } {
    const n = Math.min(this.count, this.ring.length);
    if (n === 0) return { p50: 0, p95: 0, p99: 0, max: 0, maxEver: 0 };
    const sorted = Array.from(this.ring.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number): number => round(sorted[Math.min(n - 1, Math.floor(q * n))] as number);
    return {
      p50: at(0.5),
      p95: at(0.95),
      p99: at(0.99),
      max: round(sorted[n - 1] as number),
      maxEver: round(this.largest),
    };
  }
}

const round = (n: number): number => Math.round(n * 10) / 10;
