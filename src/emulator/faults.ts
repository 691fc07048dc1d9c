import type { CallParams } from './params.ts';

export type Fault =
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'fail'; status: number }
  | { kind: 'throttle'; retryAfterMs: number; code: number | undefined }
  | { kind: 'badjson' };

/** Beyond this many distinct fault keys the counters start over (a guard, not a feature). */
const MAX_KEYS = 100_000;

/**
 * Decides which injected fault a call gets. `failTimes` counts per fault key (the `faultKey`
 * parameter or the call's full URL) and per page, so "fail twice then succeed" survives the
 * client's retries, and only calls that get this far (not throttled, authorised) count.
 */
export class FaultBook {
  private readonly counts = new Map<string, number>();

  /** The fault for this call, if any. `url` is the request URL as received. */
  next(params: CallParams, url: string, page: number): Fault | undefined {
    const fault = pick(params);
    if (fault === undefined) return undefined;
    if (params.failPage !== undefined && params.failPage !== page) return undefined;
    if (params.failTimes !== Infinity) {
      const key = `${params.faultKey ?? url}#${page}`;
      const seen = this.counts.get(key) ?? 0;
      if (seen >= params.failTimes) return undefined;
      if (this.counts.size >= MAX_KEYS && seen === 0) this.counts.clear();
      this.counts.set(key, seen + 1);
    }
    return fault;
  }

  clear(): void {
    this.counts.clear();
  }
}

/** One fault per call; the most drastic wins when a URL asks for several. */
function pick(params: CallParams): Fault | undefined {
  if (params.hang) return { kind: 'hang' };
  if (params.reset) return { kind: 'reset' };
  if (params.fail !== undefined) return { kind: 'fail', status: params.fail };
  if (params.throttle)
    return { kind: 'throttle', retryAfterMs: params.retryAfterMs, code: params.throttleCode };
  if (params.badjson) return { kind: 'badjson' };
  return undefined;
}
