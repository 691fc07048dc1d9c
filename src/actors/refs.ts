import type { CollectorMessage } from '../messages/collector-messages.ts';
import type { PoolMessage } from '../messages/pool-messages.ts';
import type { RouterMessage } from '../messages/router-messages.ts';
import type { ThrottleMessage } from '../messages/throttle-messages.ts';
import type { ActorRef } from './nact-typed.ts';

export type RouterRef = ActorRef<RouterMessage>;
export type ThrottleRef = ActorRef<ThrottleMessage>;
export type CollectorPoolRef = ActorRef<PoolMessage>;
export type CollectorRef = ActorRef<CollectorMessage>;
