/**
 * The bytes of response bodies a node holds at once, across all its calls: read from the socket
 * and not yet stored. Without it the bound was `concurrency × maxBodyBytes` (1,024 × 64 MB by
 * default), far beyond any machine's memory, reached as soon as an API answered large pages.
 *
 * Each body is read under a `BodyLease`. A reader counts every chunk it receives (it is in memory
 * already) and, while the node holds more than `maxBytes`, stops reading until bodies are stored
 * and released; the socket's flow control then holds the rest at the platform. One rule keeps
 * the node moving: **the oldest open lease never waits**. Its body completes, is stored and is
 * released, and the next oldest goes on, so a node never stalls with every reader waiting on the
 * others. The most a node holds is therefore `maxBytes` plus one body (`maxBodyBytes`), plus
 * the chunk each waiting reader has in hand.
 *
 * Waiters resume first in, first out, and only as many as the room allows (each is expected to
 * take about its last chunk), so a release of a few bytes does not wake a thousand readers.
 * Pure bookkeeping: no I/O, no timers; the HTTP client awaits what `grow` returns.
 */
export class BodyBudget {
  readonly maxBytes: number;
  /** Bytes counted now, in all open leases. */
  held = 0;
  /** The most `held` has been. */
  peak = 0;
  /** Times a reader had to stop and wait for room. */
  waits = 0;
  /** Open leases, oldest first (a Set keeps insertion order). */
  private readonly open = new Set<Lease>();
  /** Waiting leases, first in first out. */
  private readonly waiting = new Set<Lease>();
  /** Bytes that woken readers are expected to add (their last chunk each). */
  private promised = 0;

  constructor(maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`a body budget needs a positive size, not ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** A lease for one body, opened when its response starts. */
  lease(): BodyLease {
    const lease = new Lease(this);
    this.open.add(lease);
    return lease;
  }

  /** Readers waiting for room now. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Open leases now (bodies being read or not yet stored). */
  get openCount(): number {
    return this.open.size;
  }

  /** @internal */
  grow(lease: Lease, bytes: number): Promise<void> | undefined {
    if (lease.expected > 0) {
      this.promised -= lease.expected;
      lease.expected = 0;
    }
    lease.bytes += bytes;
    this.held += bytes;
    if (this.held > this.peak) this.peak = this.held;
    if (this.held <= this.maxBytes || this.isOldest(lease)) return undefined;
    this.waits++;
    lease.lastChunk = bytes;
    this.waiting.add(lease);
    return new Promise<void>((resolve) => {
      lease.resume = resolve;
    });
  }

  /** @internal */
  release(lease: Lease): void {
    if (!this.open.delete(lease)) return;
    this.held -= lease.bytes;
    lease.bytes = 0;
    this.promised -= lease.expected;
    lease.expected = 0;
    // A reader stopped while it waited (its call timed out): nothing more to resume.
    this.waiting.delete(lease);
    lease.resume = undefined;
    this.wake();
  }

  private isOldest(lease: Lease): boolean {
    for (const first of this.open) return first === lease;
    return false;
  }

  /** Resumes waiters in order while there is room for their next chunk, and the oldest always. */
  private wake(): void {
    for (const lease of this.waiting) {
      const oldest = this.isOldest(lease);
      if (!oldest && this.held + this.promised + lease.lastChunk > this.maxBytes) break;
      this.waiting.delete(lease);
      lease.expected = lease.lastChunk;
      this.promised += lease.expected;
      const resume = lease.resume;
      lease.resume = undefined;
      resume?.();
    }
    // The oldest may be waiting behind readers that do not fit: it never waits for them.
    for (const first of this.open) {
      if (this.waiting.has(first)) {
        this.waiting.delete(first);
        const resume = first.resume;
        first.resume = undefined;
        resume?.();
      }
      break;
    }
  }
}

/** One body's share of the node's budget. */
export interface BodyLease {
  /** Bytes this body holds now. */
  readonly bytes: number;
  /**
   * Counts a chunk just read. Returns a promise when the node holds too much: read no more until
   * it settles (or the call is given up, then `release`).
   */
  grow(bytes: number): Promise<void> | undefined;
  /** The body is stored, or dropped: its bytes are free. Idempotent. */
  release(): void;
}

class Lease implements BodyLease {
  bytes = 0;
  /** Size of the chunk read before the last wait: what the reader is expected to take next. */
  lastChunk = 0;
  /** Room promised to this reader when it was woken, until its next chunk arrives. */
  expected = 0;
  resume: (() => void) | undefined = undefined;
  private readonly budget: BodyBudget;

  constructor(budget: BodyBudget) {
    this.budget = budget;
  }

  grow(bytes: number): Promise<void> | undefined {
    return this.budget.grow(this, bytes);
  }

  release(): void {
    this.budget.release(this);
  }
}
