/**
 * The calls one limit key has made, oldest first: the exact sliding window behind "at most
 * `limit` calls in any window of `windowMs`". Fixed windows let 2N calls through within one
 * window's length and token buckets with burst N let 2N-1 through; a log of call times does not.
 *
 * A call at time t occupies the window (t, t + windowMs]; a new call at `now` is allowed when the
 * weights of calls with t > now - windowMs, plus its own, stay within the limit.
 */
/**
 * The calls of every empty log: a key's first call replaces it with an array of its own, so a
 * new key allocates one array, not an empty one first. Frozen: nothing may write to it.
 */
const NO_CALLS = Object.freeze([]) as unknown as number[];

export class WindowLog {
  /**
   * The calls, oldest first, three numbers each: time, weight, id. One array, not three: a key
   * usually holds one call, and 100,000 keys' logs are most of what an idle node keeps.
   */
  private calls: number[] = NO_CALLS;
  /** Index (in calls, not numbers) of the oldest call still counted. */
  private head = 0;

  get size(): number {
    return this.calls.length / 3 - this.head;
  }

  private timeAt(call: number): number {
    return this.calls[call * 3] as number;
  }

  private weightAt(call: number): number {
    return this.calls[call * 3 + 1] as number;
  }

  private get end(): number {
    return this.calls.length / 3;
  }

  /** Drops calls that no longer count at `now` (t <= now - windowMs). */
  evict(now: number, windowMs: number): void {
    const horizon = now - windowMs;
    while (this.head < this.end && this.timeAt(this.head) <= horizon) this.head++;
    this.compact();
  }

  /** Drops everything before `start` (calendar windows that reset at a fixed time). */
  evictBefore(start: number): void {
    while (this.head < this.end && this.timeAt(this.head) < start) this.head++;
    this.compact();
  }

  used(): number {
    let sum = 0;
    for (let i = this.head; i < this.end; i++) sum += this.weightAt(i);
    return sum;
  }

  /**
   * When a call of `weight` fits, given the calls already logged and evicted for `now`: `now`
   * itself if it fits already, else the first time enough old calls have left the window.
   */
  earliestFit(now: number, limit: number, weight: number, windowMs: number): number {
    if (weight > limit) return Number.POSITIVE_INFINITY;
    let excess = this.used() + weight - limit;
    if (excess <= 0) return now;
    for (let i = this.head; i < this.end; i++) {
      excess -= this.weightAt(i);
      if (excess <= 0) return this.timeAt(i) + windowMs;
    }
    return Number.POSITIVE_INFINITY;
  }

  add(time: number, weight: number, id: number): void {
    if (this.size === 0) {
      this.head = 0;
      if (this.calls.length === 3) {
        // The one call left the window: reuse its place (nothing allocated per call).
        this.calls[0] = time;
        this.calls[1] = weight;
        this.calls[2] = id;
      } else {
        // Most keys hold one call at a time: an exact-size array, not the 17 slots a push reserves.
        this.calls = [time, weight, id];
      }
      return;
    }
    // Calls arrive in time order almost always; keep the log sorted when one does not.
    let at = this.end;
    while (at > this.head && this.timeAt(at - 1) > time) at--;
    this.calls.splice(at * 3, 0, time, weight, id);
  }

  /** Moves call `id` to a later time (when it really left); returns false when it is gone. */
  moveLater(id: number, time: number): boolean {
    const index = this.indexOf(id);
    if (index < 0) return false;
    if (this.timeAt(index) >= time) return true;
    if (index === this.end - 1) {
      // The newest call moves later: the log stays sorted.
      this.calls[index * 3] = time;
      return true;
    }
    const weight = this.weightAt(index);
    this.calls.splice(index * 3, 3);
    this.add(time, weight, id);
    return true;
  }

  /** Forgets call `id` (its slot is given back); false when it is not in the log. */
  remove(id: number): boolean {
    const index = this.indexOf(id);
    if (index < 0) return false;
    this.calls.splice(index * 3, 3);
    return true;
  }

  /** The newest call time, or -Infinity when empty. */
  newest(): number {
    return this.size === 0 ? Number.NEGATIVE_INFINITY : this.timeAt(this.end - 1);
  }

  private indexOf(id: number): number {
    for (let i = this.head; i < this.end; i++) if (this.calls[i * 3 + 2] === id) return i;
    return -1;
  }

  private compact(): void {
    if (this.head > 1 && this.head === this.end) {
      // Everything left the window: drop the array (an idle key keeps no slack).
      this.calls = NO_CALLS;
      this.head = 0;
      return;
    }
    // Shift the array only now and then so eviction stays O(1) amortised.
    if (this.head > 32 && this.head * 2 > this.end) {
      this.calls = this.calls.slice(this.head * 3);
      this.head = 0;
    }
  }
}

const DAY_MS = 86_400_000;
export const utcDayStart = (now: number): number => Math.floor(now / DAY_MS) * DAY_MS;
export const nextUtcMidnight = (now: number): number => utcDayStart(now) + DAY_MS;
