/**
 * Calls per key per UTC calendar day, for limits that reset at 00:00 UTC rather than slide: the
 * emulator's per-account daily quotas and `reset: 'utc-day'` rules. Times are wall-clock ms
 * (`Date.now()`) passed in, so tests drive it with made-up clocks.
 */

export const DAY_MS = 86_400_000;

export interface DayResult {
  /** Arrivals for the key this UTC day, this one included, capped at the limit. */
  count: number;
  /** There were already `limit` arrivals today: the real platform would refuse this call. */
  violated: boolean;
  /** Ms until the next 00:00 UTC, when the count starts over. */
  resetInMs: number;
  /** Ms until one more arrival would be within the limit (the next 00:00 UTC); 0 when it would now. */
  nextFreeMs: number;
}

interface DayEntry {
  day: number;
  count: number;
}

/** Ms from `wallMs` to the next 00:00 UTC (a full day at midnight itself). */
export function msToNextUtcDay(wallMs: number): number {
  return (Math.floor(wallMs / DAY_MS) + 1) * DAY_MS - wallMs;
}

const MIN_PRUNE_AT = 1024;

export class DayCount {
  private readonly entries = new Map<string, DayEntry>();
  private pruneAt = MIN_PRUNE_AT;

  /** Keys held (those of earlier days are dropped when the map has doubled). */
  get keys(): number {
    return this.entries.size;
  }

  /**
   * Records an arrival for `key` at `wallMs` against `limit` calls a day. Every call counts,
   * refused ones too, as real platforms count them and as the sliding windows do.
   */
  arrive(key: string, wallMs: number, limit: number): DayResult {
    const day = Math.floor(wallMs / DAY_MS);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      if (this.entries.size >= this.pruneAt) this.prune(day);
      entry = { day, count: 0 };
      this.entries.set(key, entry);
    } else if (entry.day !== day) {
      entry.day = day;
      entry.count = 0;
    }
    const violated = entry.count >= limit;
    entry.count++;
    const resetInMs = msToNextUtcDay(wallMs);
    return {
      count: Math.min(entry.count, limit),
      violated,
      resetInMs,
      nextFreeMs: entry.count >= limit ? resetInMs : 0,
    };
  }

  /** Drops keys not called today; O(keys), run when the map doubles. */
  private prune(day: number): void {
    for (const [key, entry] of this.entries) if (entry.day !== day) this.entries.delete(key);
    this.pruneAt = Math.max(MIN_PRUNE_AT, this.entries.size * 2);
  }

  clear(): void {
    this.entries.clear();
    this.pruneAt = MIN_PRUNE_AT;
  }
}
