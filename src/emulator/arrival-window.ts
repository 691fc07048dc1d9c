/**
 * Exact sliding-window arrival log, one per limit rule, keyed by scope key.
 *
 * The question asked on every arrival is "were there already `limit` arrivals in
 * (now - perMs, now]?". Only the newest `limit` arrivals can answer it, so each key keeps a ring
 * of at most `limit` timestamps: O(1) amortised per arrival (each timestamp is pushed and expired
 * once), and memory bounded by `limit` per key whatever the load. Rings start small and double,
 * so 100k keys that each call rarely cost little. Refused arrivals are recorded too: real
 * platforms count every call, which is what makes hammering a throttled key keep it throttled.
 */

export interface ArrivalResult {
  /** Arrivals in (now - perMs, now] including this one, capped at `limit`. */
  count: number;
  /** There were already `limit` arrivals in the window: the real platform would refuse this call. */
  violated: boolean;
  /** Ms until the oldest counted arrival leaves the window (when `count` first drops). */
  resetInMs: number;
  /** Ms until one more arrival would be within the limit; 0 when it already would. */
  nextFreeMs: number;
  /** Ms since the previous arrival for this key; Infinity for its first. */
  gapMs: number;
}

interface Ring {
  buf: Float64Array;
  /** Index of the oldest kept arrival. */
  head: number;
  size: number;
  last: number;
}

const INITIAL_CAPACITY = 4;
const MIN_PRUNE_AT = 1024;

export class ArrivalWindow {
  readonly limit: number;
  readonly perMs: number;
  private readonly rings = new Map<string, Ring>();
  private pruneAt = MIN_PRUNE_AT;

  constructor(limit: number, perMs: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer ≥ 1: ${limit}`);
    if (!(perMs > 0) || !Number.isFinite(perMs)) throw new RangeError(`perMs must be > 0: ${perMs}`);
    this.limit = limit;
    this.perMs = perMs;
  }

  /** Keys currently held (pruned lazily once their arrivals have all expired). */
  get keys(): number {
    return this.rings.size;
  }

  /**
   * Records an arrival at `now` (ms, e.g. `performance.now()`; must not go backwards per key —
   * an earlier time is treated as the previous arrival's time).
   */
  arrive(key: string, now: number): ArrivalResult {
    let ring = this.rings.get(key);
    if (ring === undefined) {
      if (this.rings.size >= this.pruneAt) this.prune(now);
      ring = {
        buf: new Float64Array(Math.min(this.limit, INITIAL_CAPACITY)),
        head: 0,
        size: 0,
        last: -Infinity,
      };
      this.rings.set(key, ring);
    }
    if (now < ring.last) now = ring.last;
    const cutoff = now - this.perMs;
    let cap = ring.buf.length;
    // Window is (now - perMs, now]: an arrival exactly perMs ago no longer counts.
    while (ring.size > 0 && ring.buf[ring.head]! <= cutoff) {
      ring.head = ring.head + 1 === cap ? 0 : ring.head + 1;
      ring.size--;
    }
    const violated = ring.size >= this.limit;
    if (ring.size === this.limit) {
      // Full (so cap === limit): the oldest slot becomes the newest; the oldest is not needed.
      ring.buf[ring.head] = now;
      ring.head = ring.head + 1 === cap ? 0 : ring.head + 1;
    } else {
      if (ring.size === cap) {
        const bigger = new Float64Array(Math.min(this.limit, cap * 2));
        for (let i = 0; i < ring.size; i++) bigger[i] = ring.buf[(ring.head + i) % cap]!;
        ring.buf = bigger;
        ring.head = 0;
        cap = bigger.length;
      }
      ring.buf[(ring.head + ring.size) % cap] = now;
      ring.size++;
    }
    const gapMs = now - ring.last;
    ring.last = now;
    const resetInMs = ring.buf[ring.head]! + this.perMs - now;
    return {
      count: ring.size,
      violated,
      resetInMs,
      nextFreeMs: ring.size >= this.limit ? resetInMs : 0,
      gapMs,
    };
  }

  /** Arrivals in (now - perMs, now] for `key` (capped at `limit`), without recording one. */
  count(key: string, now: number): number {
    const ring = this.rings.get(key);
    if (ring === undefined) return 0;
    const cap = ring.buf.length;
    const cutoff = now - this.perMs;
    let n = ring.size;
    for (let i = 0; i < ring.size && ring.buf[(ring.head + i) % cap]! <= cutoff; i++) n--;
    return n;
  }

  /** Drops keys whose arrivals have all left the window; O(keys), run when the map doubles. */
  prune(now: number): void {
    const cutoff = now - this.perMs;
    for (const [key, ring] of this.rings) {
      if (ring.last <= cutoff) this.rings.delete(key);
    }
    this.pruneAt = Math.max(MIN_PRUNE_AT, this.rings.size * 2);
  }

  clear(): void {
    this.rings.clear();
    this.pruneAt = MIN_PRUNE_AT;
  }
}
