/**
 * Calls of one concurrency rule in flight, per scope key. A key's entry exists only while it has
 * calls in flight, so 100k keys that each call once cost nothing once their calls have ended.
 */
export class InFlightGauge {
  private readonly counts = new Map<string, number>();
  private maxSeen = 0;

  /** The most calls of one key in flight at once since construction or the last `resetMax()`. */
  get max(): number {
    return this.maxSeen;
  }

  /** Keys with calls in flight now. */
  get keys(): number {
    return this.counts.size;
  }

  /** Calls of `key` in flight now. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** One more call of `key` in flight; returns how many are now, this one included. */
  enter(key: string): number {
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    if (n > this.maxSeen) this.maxSeen = n;
    return n;
  }

  /**
   * A call of `key` has ended. The caller leaves only what it entered (once); a key without calls
   * in flight stays at 0 rather than going negative, so a stray leave cannot hide a later excess.
   */
  leave(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  /** Starts the maximum over from what is in flight now (calls in flight stay counted). */
  resetMax(): void {
    let max = 0;
    for (const n of this.counts.values()) if (n > max) max = n;
    this.maxSeen = max;
  }
}
