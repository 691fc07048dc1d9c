import type { ActorRef } from '../actors/nact-typed.ts';
import type { JobMessage } from '../bus/job-message.ts';
import type { ThrottleMessage } from './throttle-messages.ts';
import type { Work } from './work.ts';

/** What the router receives. */
export type RouterMessage =
  /** A job message pulled from JetStream. */
  | { type: 'job'; message: JobMessage }
  /** A throttle actor has been idle long enough to stop. */
  | { type: 'throttle-idle'; key: string; ref: ActorRef<ThrottleMessage>; received: number }
  /** Jobs a retiring or stopped throttle actor still held: route them again. */
  | { type: 'reroute'; works: Work[] }
  /** A throttle actor stopped (supervision gave up on it): forget it. */
  | { type: 'throttle-stopped'; key: string; ref: ActorRef<ThrottleMessage> };
