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

/**
 * Nodes waiting for a place under a cap shared by several nodes, first come first served: their
 * ids and when each stops counting (a waiter renews it every time it looks again). Without a
 * line, a node that gives a place back and asks again at once takes it every time, and a node
 * that looks only every so often never finds it free.
 */
export interface Waiters {
  ids: string[];
  until: number[];
}

/** The waiters still waiting at `now`, in their order. */
export function liveWaiters(waiters: Waiters | undefined, now: number): Waiters {
  if (waiters === undefined) return { ids: [], until: [] };
  const keep = waiters.until.map((t) => t > now);
  return { ids: waiters.ids.filter((_, i) => keep[i]), until: waiters.until.filter((_, i) => keep[i]) };
}

/**
 * When `self` may take a place: `now` if one is free and no waiter came before it (the first
 * free-places-many waiters may take them), else when to look again, as for leaseFit.
 */
export function placeFit(
  live: Leases,
  waiters: Waiters,
  limit: number,
  self: string,
  now: number,
  pollMs: number,
): number {
  const free = limit - live.ids.length;
  const position = waiters.ids.indexOf(self);
  const ahead = position < 0 ? waiters.ids.length : position;
  if (free > ahead) return now;
  return free > 0 ? now + pollMs : leaseFit(live, limit, now, pollMs);
}

/** `waiters` with `self` in line until `until` (at the back, or renewed where it stands). */
export function withWaiter(waiters: Waiters, self: string, until: number): Waiters {
  const position = waiters.ids.indexOf(self);
  if (position < 0) return { ids: [...waiters.ids, self], until: [...waiters.until, until] };
  const renewed = [...waiters.until];
  renewed[position] = until;
  return { ids: waiters.ids, until: renewed };
}

/** `waiters` without `self` (it took a place). */
export function withoutWaiter(waiters: Waiters, self: string): Waiters {
  const position = waiters.ids.indexOf(self);
  if (position < 0) return waiters;
  return {
    ids: waiters.ids.filter((_, i) => i !== position),
    until: waiters.until.filter((_, i) => i !== position),
  };
}
