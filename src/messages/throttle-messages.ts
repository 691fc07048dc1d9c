import type { Work } from './work.ts';

/** What a throttle actor (one per key) receives. */
export type ThrottleMessage =
  /** A new job for this key (from the router). */
  | { type: 'enqueue'; work: Work }
  /** The scheduler's wake-up: a slot may be free now. */
  | { type: 'wake' }
  /** A page was stored and the job has more: fetch the next one (jumps the queue). */
  | { type: 'next-page'; work: Work }
  /** The call's slot lapsed while it waited for a collector: it waits for a new slot, first in line. */
  | { type: 'requeue'; work: Work }
  /** A call ended and its job left this key (done, handed back to JetStream, or dead-lettered). */
  | { type: 'call-ended' }
  /**
   * The platform said "too many calls": pause the scope until `until` (or slow it to one call per
   * `slowIntervalMs`), then retry the same page.
   */
  | {
      type: 'throttled';
      work: Work;
      scope: string;
      until: number;
      reason: string;
      slowIntervalMs: number | undefined;
    }
  /** Idle long enough: the router agreed to forget this actor; hand back anything that arrived. */
  | { type: 'retire' }
  /** Hand every parked job back to JetStream now (drain). */
  | { type: 'release-parked' };
