import type { MetricsMessage } from '../messages/metrics-messages.ts';
import type { NodeSnapshot } from '../runtime/snapshot.ts';
import { spawnActor, type ParentRef } from './nact-typed.ts';
import type { NodeServices } from './services.ts';

/** Logs the node's figures (one pino line) on every tick of the metrics interval. */
export function spawnMetrics(parent: ParentRef, services: NodeServices, snapshot: () => NodeSnapshot) {
  return spawnActor<undefined, MetricsMessage>(parent, {
    name: 'metrics',
    initialState: () => undefined,
    receive: () => {
      services.log.info({ metrics: snapshot() }, 'node metrics');
      return undefined;
    },
    supervision: {
      restart: 'reset',
      backoffBaseMs: 100,
      backoffMaxMs: 10_000,
      maxCrashes: 100,
      windowMs: 60_000,
      onCrash: ({ error }) => {
        services.stats.actorRestarts++;
        services.log.error({ err: error }, 'metrics actor crashed');
      },
    },
  });
}
