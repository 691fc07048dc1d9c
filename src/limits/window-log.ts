/**
 * The calls one limit key has made, oldest first: the exact sliding window behind "at most
 * `limit` calls in any window of `windowMs`". Fixed windows let 2N calls through within one
 * window's length and token buckets with burst N let 2N-1 through; a log of call times does not.
 *
 * A call at time t occupies the window (t, t + windowMs]; a new call at `now` is allowed when the
 * weights of calls with t > now - windowMs, plus its own, stay within the limit.
 */
export class WindowLog {
  private times: number[] = [];
  private weights: number[] = [];
  private ids: number[] = [];
  private head = 0;

  get size(): number {
    return this.times.length - this.head;
  }

  /** Drops calls that no longer count at `now` (t <= now - windowMs). */
  evict(now: number, windowMs: number): void {
    const horizon = now - windowMs;
    while (this.head < this.times.length && (this.times[this.head] as number) <= horizon) this.head++;
    this.compact();
  }

  /** Drops everything before `start` (calendar windows that reset at a fixed time). */
  evictBefore(start: number): void {
    while (this.head < this.times.length && (this.times[this.head] as number) < start) this.head++;
    this.compact();
  }

  used(): number {
    let sum = 0;
    for (let i = this.head; i < this.weights.length; i++) sum += this.weights[i] as number;
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
    for (let i = this.head; i < this.times.length; i++) {
      excess -= this.weights[i] as number;
      if (excess <= 0) return (this.times[i] as number) + windowMs;
    }
    return Number.POSITIVE_INFINITY;
  }

  add(time: number, weight: number, id: number): void {
    if (this.size === 0) {
      this.head = 0;
      if (this.times.length === 1) {
        // The one call left the window: reuse its slot (nothing allocated per call).
        this.times[0] = time;
        this.weights[0] = weight;
        this.ids[0] = id;
      } else {
        // Most keys hold one call at a time: exact-size arrays, not the 17 slots a push reserves.
        this.times = [time];
        this.weights = [weight];
        this.ids = [id];
      }
      return;
    }
    // Calls arrive in time order almost always; keep the log sorted when one does not.
    let at = this.times.length;
    while (at > this.head && (this.times[at - 1] as number) > time) at--;
    this.times.splice(at, 0, time);
    this.weights.splice(at, 0, weight);
    this.ids.splice(at, 0, id);
  }

  /** Moves call `id` to a later time (when it really left); returns false when it is gone. */
  moveLater(id: number, time: number): boolean {
    const index = this.ids.indexOf(id, this.head);
    if (index < 0) return false;
    if ((this.times[index] as number) >= time) return true;
    if (index === this.times.length - 1) {
      // The newest call moves later: the log stays sorted.
      this.times[index] = time;
      return true;
    }
    const weight = this.weights[index] as number;
    this.times.splice(index, 1);
    this.weights.splice(index, 1);
    this.ids.splice(index, 1);
    this.add(time, weight, id);
    return true;
  }

  /** Forgets call `id` (its slot is given back); false when it is not in the log. */
  remove(id: number): boolean {
    const index = this.ids.indexOf(id, this.head);
    if (index < 0) return false;
    this.times.splice(index, 1);
    this.weights.splice(index, 1);
    this.ids.splice(index, 1);
    return true;
  }

  /** The newest call time, or -Infinity when empty. */
  newest(): number {
    return this.size === 0 ? Number.NEGATIVE_INFINITY : (this.times[this.times.length - 1] as number);
  }

  private compact(): void {
    if (this.head > 1 && this.head === this.times.length) {
      // Everything left the window: drop the arrays (an idle key keeps no slack).
      this.times = [];
      this.weights = [];
      this.ids = [];
      this.head = 0;
      return;
    }
    // Shift the arrays only now and then so eviction stays O(1) amortised.
    if (this.head > 32 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.weights = this.weights.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }
}

const DAY_MS = 86_400_000;
export const utcDayStart = (now: number): number => Math.floor(now / DAY_MS) * DAY_MS;
export const nextUtcMidnight = (now: number): number => utcDayStart(now) + DAY_MS;
