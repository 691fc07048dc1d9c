import type { Job } from '../messages/job.ts';
import { isLiveChildOf, stateOf, tell, type ParentRef } from './nact-typed.ts';
import type { CollectorPoolRef, RouterRef, ThrottleRef } from './refs.ts';
import type { NodeServices } from './services.ts';
import type { KeyDirectory, KeyStatus } from '../runtime/node-stats.ts';
import { throttleKind, type KeyThrottle, type SpawnThrottle } from './throttle.ts';

/** The router's entry for a key: its live throttle actor, and how many jobs the router sent it. */
export interface ThrottleEntry {
  ref: ThrottleRef;
  sent: number;
}

/**
 * The live throttle actors by key. The router alone writes it, as its routing table; the
 * registry reads it for the metrics line, `prism status` and a drain. It is the node's only
 * index of its keys: the actors are not listed again in nact's children map of their supervisor.
 */
export type ThrottleDirectory = Map<string, ThrottleEntry>;

/**
 * Spawns each key's throttle actor under the silent `throttles` supervisor (nact copies a
 * parent's children map on every message it handles, so the parent handles none) and knows
 * which are alive: collectors reply only to live ones, and a drain reaches every one. A stopped
 * actor tells the router, which hands anything that arrived meanwhile to the key's next actor.
 */
export class ThrottleRegistry implements KeyDirectory {
  readonly directory: ThrottleDirectory = new Map();
  private readonly supervisor: ParentRef;
  private readonly services: NodeServices;
  private readonly pool: CollectorPoolRef;
  private spawnKind: SpawnThrottle | undefined;

  constructor(supervisor: ParentRef, services: NodeServices, pool: CollectorPoolRef) {
    this.supervisor = supervisor;
    this.services = services;
    this.pool = pool;
    // The metrics line and `prism status` read each live key's state through the registry.
    services.stats.keys = this;
  }

  /** Set once the router exists (it is created with `spawn` as its factory). */
  set router(router: RouterRef) {
    this.spawnKind = throttleKind({
      services: this.services,
      pool: this.pool,
      router,
      onStopped: (stopped, key, leftovers) => {
        tell(router, { type: 'throttle-stopped', key, ref: stopped });
        if (leftovers.length > 0) tell(router, { type: 'reroute', works: leftovers });
      },
    });
  }

  /** The router's factory: a throttle actor for `key`, with the concurrency of the job's api. */
  readonly spawn = (key: string, job: Job): ThrottleRef => {
    if (this.spawnKind === undefined) throw new Error('ThrottleRegistry.router is not set');
    const api = this.services.config.sources[job.source]?.apis[job.api];
    // Named by its key, a string the key holds anyway: an unlisted actor's name needs no
    // uniqueness, and a number made a string per key (24 B; `throttle-N` cost ~56 B).
    return this.spawnKind(this.supervisor, key, key, api?.concurrency ?? 1);
  };

  /** Whether `ref` is a throttle actor of this node that has not stopped. */
  has(ref: unknown): boolean {
    return isLiveChildOf(ref, this.supervisor);
  }

  get size(): number {
    return this.directory.size;
  }

  /** Each live key's state (its throttle actor's `KeyThrottle`). */
  *values(): Iterable<KeyStatus> {
    for (const { ref } of this.directory.values()) {
      const state = stateOf<KeyThrottle>(ref);
      if (state !== undefined) yield state;
    }
  }

  /** A copy: stopping an actor removes it from the directory. */
  refs(): ThrottleRef[] {
    return Array.from(this.directory.values(), (entry) => entry.ref);
  }
}
