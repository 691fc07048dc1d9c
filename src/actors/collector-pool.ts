import Denque from 'denque';
import type { PoolMessage } from '../messages/pool-messages.ts';
import { spawnActor, tell, type ParentRef } from './nact-typed.ts';
import type { CollectorRef } from './refs.ts';
import type { NodeServices } from './services.ts';

/**
 * Hands calls to free collectors, first come first served; the rest wait in `waitingCalls`.
 * Fairness between keys comes from the throttles: each key sends at most its concurrency
 * (usually 1) calls at a time, so a key with 50,000 parked jobs has one call waiting here, not
 * 50,000. The collectors are children of a silent supervisor (see spawnSupervisor).
 */
interface PoolState {
  freeCollectors: CollectorRef[];
  waitingCalls: Denque<Extract<PoolMessage, { type: 'call' }>>;
}

/** Collectors join the pool by sending `collector-free` once they exist. */
export function spawnCollectorPool(parent: ParentRef, services: NodeServices) {
  return spawnActor<PoolState, PoolMessage>(parent, {
    name: 'collector-pool',
    initialState: () => ({ freeCollectors: [], waitingCalls: new Denque() }),
    receive: (state, message) => {
      if (message.type === 'call') {
        const collector = state.freeCollectors.pop();
        if (collector === undefined) state.waitingCalls.push(message);
        else tell(collector, { type: 'call', work: message.work, replyTo: message.replyTo });
      } else {
        const waiting = state.waitingCalls.shift();
        if (waiting === undefined) state.freeCollectors.push(message.collector);
        else tell(message.collector, { type: 'call', work: waiting.work, replyTo: waiting.replyTo });
      }
      services.stats.collectorsBusy = services.stats.collectors - state.freeCollectors.length;
      services.stats.callsWaiting = state.waitingCalls.length;
      return state;
    },
    supervision: {
      // Resume keeps who is free and what waits; a reset would forget both.
      restart: 'resume',
      backoffBaseMs: 10,
      backoffMaxMs: 1_000,
      maxCrashes: 100,
      windowMs: 60_000,
      onCrash: ({ error }) => {
        services.stats.actorRestarts++;
        services.log.error({ err: error }, 'collector pool crashed');
      },
    },
  });
}
