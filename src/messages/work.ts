import type { JobMessage } from '../bus/job-message.ts';
import type { LimitCheck } from '../limits/ledger.ts';
import type { PageRequest } from '../limits/pagination.ts';
import type { StoredObject } from '../storage/storage.ts';
import type { Job } from './job.ts';

/**
 * A job in progress on this node: what the throttle parks and the collectors fetch. It is a
 * cache of progress; the durable copy is `message` in JetStream, unacked until the end.
 */
export interface Work {
  job: Job;
  /** The throttle key `<source>.<api>.<account>` (tokens encoded). */
  key: string;
  message: JobMessage;
  /** Every limit each call of this job must fit. */
  checks: LimitCheck[];
  /**
   * Scope keys whose pauses stop this job (resolved signal scopes): worked out by the throttle
   * the first time a pause or slowdown is known on the node (`pauseKeysOf`), not by the router
   * for every job; most jobs never need them.
   */
  pauseKeys: string[] | undefined;
  /** Real attempt number (1 on the first). */
  attempt: number;
  /** Index of the next page to fetch, and its request. */
  page: number;
  request: PageRequest;
  /**
   * The pages stored so far; none (undefined) until the first. Not an empty array per job: a
   * parked job lives about as long as its key's spacing, so whatever it holds is promoted to the
   * old generation, and at 100,000 keys of 1 call/s that was 100,000 empty arrays a second.
   */
  objects: StoredObject[] | undefined;
  startedAt: number;
  /** Throttle signals met so far (a guard against a key that is throttled for ever). */
  throttled: number;
  /** Ledger id of the slot taken for the call in progress, and when it was taken. */
  reservation?: number;
  reservedAt?: number;
  /** The limits that slot was taken in (the job's, plus any slowdown in force). */
  reservedChecks?: LimitCheck[];
  lastStatus?: number;
  /**
   * The job behind this one in its key's line of parked jobs (KeyThrottle): the line is linked
   * through its jobs rather than held in a deque per key. Only the key's throttle actor sets it.
   */
  nextInLine?: Work | undefined;
}
