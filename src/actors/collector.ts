import { collectPage } from '../collect/collect-page.ts';
import { deadLetterWork, finishJob, retryOrDeadLetter } from '../collect/settle.ts';
import type { Settling } from '../collect/settling.ts';
import type { CollectorMessage } from '../messages/collector-messages.ts';
import type { ThrottleMessage } from '../messages/throttle-messages.ts';
import type { Work } from '../messages/work.ts';
import { spawnActor, tell, type ActorContext, type ParentRef } from './nact-typed.ts';
import type { CollectorPoolRef, CollectorRef, RouterRef } from './refs.ts';
import type { NodeServices } from './services.ts';
import { CALL_ENDED } from './throttle.ts';

export interface CollectorDeps {
  services: NodeServices;
  pool: CollectorPoolRef;
  router: RouterRef;
  /** Whether the throttle actor a reply goes to still runs (messages to stopped actors vanish). */
  isLive: (ref: unknown) => boolean;
  /** Counts crashes per job, to tell a poison job from bad luck. */
  poison: Map<string, number>;
  /** Where jobs whose calls are done leave the node, without holding their collector. */
  settling: Settling;
}

/** Jobs that may settle at once per collector, before collectors wait for NATS (see Settling). */
export const SETTLING_PER_COLLECTOR = 4;

/** Crashing the collector this often with one job makes it a poison job: DLQ, not another try. */
export const POISON_CRASHES = 3;

/**
 * Runs one call at a time: fetch one page, store it, then tell the key's throttle what happened
 * (next page, throttled, or the job's calls are done) and tell the pool it is free. A job that
 * is done leaves through `settling` (result, ack, or retry, or dead letter) while the collector
 * takes its next call. Holds no state.
 */
export function spawnCollector(parent: ParentRef, name: string, deps: CollectorDeps): CollectorRef {
  const { services } = deps;

  /**
   * Settles a job off the collector, then tells its key's throttle the call ended. Not before:
   * the key's next call waits for its last job to settle, as it did when collectors settled jobs
   * themselves. Those NATS round trips also give a platform's usage headers, slowing the key
   * from another node's answer, time to reach this node through the KV watch (with call-ended
   * sent first, signals-every-node's "Meta usage headers" case broke the platform's hidden limit
   * in 1 of 5 runs on a loaded machine). When settling fails (NATS away for longer than its
   * retries), the job is tried again later like any failed attempt, which also ends a job whose
   * result can never be published; the last resort hands the message back to JetStream.
   */
  const settleAfterCalls =
    (work: Work, reply: (next: ThrottleMessage) => void, settle: () => Promise<void>) =>
    async (): Promise<void> => {
      try {
        await settle();
      } catch (error) {
        services.log.error({ err: error, job: work.job.id, key: work.key }, 'settling a job failed');
        await retryOrDeadLetter(work, `settling failed: ${(error as Error).message}`, services).catch(
          (err: unknown) => {
            services.log.error(
              { err, job: work.job.id },
              'settling a job failed again; JetStream gets it back',
            );
            work.message.nak(services.config.node.backoffMax);
          },
        );
      } finally {
        reply(CALL_ENDED);
      }
    };

  const receive = async (
    _state: undefined,
    message: CollectorMessage,
    ctx: ActorContext<CollectorMessage>,
  ) => {
    const { work, replyTo } = message;
    const turnStarted = services.now();
    let crashed = true;
    // A reply whose throttle stopped meanwhile goes through the router, which finds the key's new actor.
    const reply = (next: ThrottleMessage): void => {
      if (deps.isLive(replyTo)) tell(replyTo, next);
      else if (next.type === 'next-page' || next.type === 'requeue' || next.type === 'throttled')
        tell(deps.router, { type: 'reroute', works: [next.work] });
    };
    try {
      const outcome = await collectPage(work, services);
      switch (outcome.kind) {
        case 'next-page':
          reply({ type: 'next-page', work });
          break;
        case 'throttled':
          work.throttled++;
          reply({
            type: 'throttled',
            work,
            scope: outcome.scope,
            until: outcome.until,
            reason: outcome.reason,
            slowIntervalMs: outcome.slowIntervalMs,
          });
          break;
        case 'slot-lapsed':
          reply({ type: 'requeue', work });
          break;
        // The collector is free for other keys' calls while the job settles; its own key hears
        // call-ended once it has (see settleAfterCalls).
        case 'finished':
          await deps.settling.admit(settleAfterCalls(work, reply, () => finishJob(work, services)));
          break;
        case 'retry':
          await deps.settling.admit(
            settleAfterCalls(work, reply, () =>
              retryOrDeadLetter(work, outcome.reason, services, outcome.notBefore),
            ),
          );
          break;
        case 'reject':
          await deps.settling.admit(
            settleAfterCalls(work, reply, () => deadLetterWork(work, 'rejected', outcome.reason, services)),
          );
          break;
      }
      crashed = false;
    } finally {
      services.stats.collectorTurn.record(services.now() - turnStarted);
      // After a crash the collector is free only once it has restarted (see initialState).
      if (!crashed) tell(deps.pool, { type: 'collector-free', collector: ctx.self });
    }
    return undefined;
  };

  /**
   * Runs when the collector starts, and again when it restarts after a crash: only then, after
   * the supervisor's backoff (10 ms, doubling per crash up to 2 s), can it take a call. Freed when
   * the crash was caught instead, it was handed the next call at once (the pool takes the collector
   * freed last), and that call waited out the backoff while other collectors sat idle. A collector
   * stopped after too many crashes never rejoins the pool.
   */
  let self: CollectorRef | undefined = undefined;
  const initialState = (): undefined => {
    if (self !== undefined) tell(deps.pool, { type: 'collector-free', collector: self });
    return undefined;
  };

  self = spawnActor<undefined, CollectorMessage>(parent, {
    name,
    initialState,
    receive,
    supervision: {
      restart: 'reset',
      backoffBaseMs: 10,
      backoffMaxMs: 2_000,
      maxCrashes: 20,
      windowMs: 60_000,
      onCrash: ({ message, error }) => {
        services.stats.actorRestarts++;
        if (message === undefined) return;
        const { work, replyTo } = message;
        const crashes = (deps.poison.get(work.job.id) ?? 0) + 1;
        deps.poison.set(work.job.id, crashes);
        services.log.error({ err: error, job: work.job.id, key: work.key, crashes }, 'collector crashed');
        const settle =
          crashes >= POISON_CRASHES
            ? deadLetterWork(
                work,
                'poison',
                `crashed the collector ${crashes} times: ${error.message}`,
                services,
              ).then(() => deps.poison.delete(work.job.id))
            : retryOrDeadLetter(work, `collector crashed: ${error.message}`, services);
        settle
          .catch((err: unknown) =>
            services.log.error({ err, job: work.job.id }, 'settling a crashed job failed'),
          )
          .finally(() => {
            if (deps.isLive(replyTo)) tell(replyTo, { type: 'call-ended' });
          });
        // No collector-free here: it rejoins the pool when it restarts (initialState).
      },
    },
  });
  // Collectors join the pool by telling it they are free once they exist.
  tell(deps.pool, { type: 'collector-free', collector: self });
  return self;
}
