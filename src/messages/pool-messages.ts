import type { ActorRef } from '../actors/nact-typed.ts';
import type { CollectorMessage } from './collector-messages.ts';
import type { ThrottleMessage } from './throttle-messages.ts';
import type { Work } from './work.ts';

/** What the collector pool receives. */
export type PoolMessage =
  /** One call that has its slots in the ledger: run it on a free collector. */
  | { type: 'call'; work: Work; replyTo: ActorRef<ThrottleMessage> }
  /** A collector finished its call and can take another. */
  | { type: 'collector-free'; collector: ActorRef<CollectorMessage> };
