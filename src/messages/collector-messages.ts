import type { ActorRef } from '../actors/nact-typed.ts';
import type { ThrottleMessage } from './throttle-messages.ts';
import type { Work } from './work.ts';

/** What a collector receives: one call (one page) to fetch and store. */
export type CollectorMessage = { type: 'call'; work: Work; replyTo: ActorRef<ThrottleMessage> };
