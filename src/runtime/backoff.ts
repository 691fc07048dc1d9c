/**
 * Exponential backoff with "equal jitter": attempt n waits between half and all of
 * base * 2^(n-1), never more than `max`. The jitter spreads retries of many jobs that failed
 * together (one outage) instead of sending them back in one wave.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
