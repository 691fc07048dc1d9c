/**
 * The calls of one concurrency cap that are in flight: parallel arrays of reservation ids and
 * the time each place lapses. A place is given back when its call ends; the lapse time only
 * frees the places of calls whose node died before it could give them back.
 */
export interface Leases {
  ids: number[];
  until: number[];
}

/** The leases still held at `now` (the same object when none lapsed). */
export function liveLeases(leases: Leases | undefined, now: number): Leases {
  if (leases === undefined) return { ids: [], until: [] };
  if (leases.until.every((t) => t > now)) return leases;
  const keep = leases.until.map((t) => t > now);
  return {
    ids: leases.ids.filter((_, i) => keep[i]),
    until: leases.until.filter((_, i) => keep[i]),
  };
}

/**
 * When one more call fits under a cap of `limit` calls in flight: `now` if a place is free, else
 * the earliest of the next lapse and `now + pollMs`. A call elsewhere may end any moment, and
 * nothing tells this node when: the caller looks again after `pollMs`.
 */
export function leaseFit(live: Leases, limit: number, now: number, pollMs: number): number {
  if (live.ids.length < limit) return now;
  return Math.min(Math.min(...live.until), now + pollMs);
}

/** `live` with one more place, held by `id` until `until`. */
export function withLease(live: Leases, id: number, until: number): Leases {
  return { ids: [...live.ids, id], until: [...live.until, until] };
}

/** `leases` without the place of `id`, or undefined when `id` holds none. */
export function withoutLease(leases: Leases | undefined, id: number): Leases | undefined {
  const index = leases?.ids.indexOf(id) ?? -1;
  if (leases === undefined || index < 0) return undefined;
  return {
    ids: leases.ids.filter((_, i) => i !== index),
    until: leases.until.filter((_, i) => i !== index),
  };
}
