import type { PrismConfig } from '../config/schema.ts';
import { deadLetter } from '../collect/settle.ts';
import { laneOf, limitChecksFor, templateVars } from '../limits/limit-keys.ts';
import { parseJob, type Job } from '../messages/job.ts';
import type { RouterMessage } from '../messages/router-messages.ts';
import { throttleKey } from '../messages/subject.ts';
import type { Work } from '../messages/work.ts';
import type { JobMessage } from '../bus/job-message.ts';
import { spawnActor, tell, type ActorContext, type ParentRef } from './nact-typed.ts';
import type { ThrottleRef } from './refs.ts';
import type { ThrottleDirectory } from './throttle-registry.ts';
import { EnqueueMessage } from './throttle.ts';
import type { NodeServices } from './services.ts';

/**
 * Validates each job and routes it to the throttle actor of its key, spawning that actor on
 * demand. Throttle actors live under a silent supervisor and are found through `throttles`, so
 * routing costs the same at 100,000 keys as at ten.
 */
interface RouterState {
  /** The live throttle actors by key: the router alone writes it (see ThrottleDirectory). */
  throttles: ThrottleDirectory;
}

export interface RouterDeps {
  services: NodeServices;
  spawnThrottle: (key: string, job: Job) => ThrottleRef;
  /** Where the router keeps its routing table, for the registry to read (ThrottleRegistry.directory). */
  directory: ThrottleDirectory;
}

export function spawnRouter(parent: ParentRef, deps: RouterDeps) {
  const { services } = deps;
  const { config } = services;

  const route = (state: RouterState, work: Work): void => {
    let entry = state.throttles.get(work.key);
    if (entry === undefined) {
      entry = { ref: deps.spawnThrottle(work.key, work.job), sent: 0 };
      state.throttles.set(work.key, entry);
    }
    entry.sent++;
    tell(entry.ref, new EnqueueMessage(work));
  };

  /**
   * Only a job message needs a promise (parsing may dead-letter it or read its attempt log):
   * the rest are handled at once, so routing a key's jobs costs no promise per message.
   */
  const receive = (
    state: RouterState,
    message: RouterMessage,
    _ctx: ActorContext<RouterMessage>,
  ): RouterState | Promise<RouterState> => {
    switch (message.type) {
      case 'job': {
        services.stats.jobsReceived++;
        return toWork(message.message, config, services).then((work) => {
          if (work !== undefined) route(state, work);
          return state;
        });
      }
      case 'reroute':
        for (const work of message.works) route(state, work);
        break;
      case 'throttle-idle': {
        // Only when every job sent to it has arrived: else a job is on its way and it is not idle.
        const entry = state.throttles.get(message.key);
        if (entry !== undefined && entry.ref === message.ref && entry.sent === message.received) {
          state.throttles.delete(message.key);
          services.stats.throttlesPassivated++;
          tell(message.ref, { type: 'retire' });
        }
        break;
      }
      case 'throttle-stopped': {
        const entry = state.throttles.get(message.key);
        if (entry !== undefined && entry.ref === message.ref) state.throttles.delete(message.key);
        break;
      }
    }
    return state;
  };

  return spawnActor<RouterState, RouterMessage>(parent, {
    name: 'router',
    initialState: () => ({ throttles: deps.directory }),
    receive,
    supervision: {
      // Resume keeps the key map; the crashed job message is handed back to JetStream below.
      restart: 'resume',
      backoffBaseMs: 10,
      backoffMaxMs: 1_000,
      maxCrashes: 100,
      windowMs: 60_000,
      onCrash: ({ message, error }) => {
        services.stats.actorRestarts++;
        services.log.error({ err: error }, 'router crashed');
        if (message?.type === 'job') message.message.nak(1_000);
      },
    },
  });
}

/** Parses and checks a job message; dead-letters it (and returns undefined) when it is not valid. */
async function toWork(
  message: JobMessage,
  config: PrismConfig,
  services: NodeServices,
): Promise<Work | undefined> {
  const parsed = parseJob({ subject: message.subject, data: message.data, msgId: message.msgId }, config);
  if (!parsed.ok) {
    // The id lets the producer match its dead letter: the job's own, else the Nats-Msg-Id header.
    const rawId = (parsed.raw as { id?: unknown } | undefined)?.id;
    const id = typeof rawId === 'string' ? rawId : message.msgId;
    const detail = { kind: 'invalid' as const, reason: parsed.reason, attempts: 0 };
    await deadLetter(message, parsed.parts, id !== undefined ? { ...detail, id } : detail, services);
    return undefined;
  }
  const { job } = parsed;
  const source = config.sources[job.source];
  const api = source?.apis[job.api];
  if (source === undefined || api === undefined) return undefined;
  const credentialProblem =
    job.auth !== undefined ? services.credentials.problem(job.source, job.auth) : undefined;
  if (credentialProblem !== undefined) {
    await deadLetter(
      message,
      job,
      {
        id: job.id,
        kind: 'invalid',
        reason: `on node ${services.nodeName}: ${credentialProblem}`,
        attempts: 0,
      },
      services,
    );
    return undefined;
  }
  const vars = templateVars(job, services.nodeName);
  const checks = limitChecksFor(source, api, vars);
  if (!checks.ok) {
    await deadLetter(
      message,
      job,
      { id: job.id, kind: 'invalid', reason: checks.reason, attempts: 0 },
      services,
    );
    return undefined;
  }
  // A first delivery is the first attempt; only a redelivery needs the attempt log.
  const attempt =
    message.deliveryCount <= 1 ? 1 : (await services.attempts.failures(job.id).catch(() => 0)) + 1;
  // A redelivered paginated job continues after the last page it stored.
  const checkpoint =
    message.deliveryCount > 1 ? await services.checkpoints.load(job.id).catch(() => undefined) : undefined;
  return {
    job,
    key: throttleKey(job) + laneOf(source, job.meta),
    message,
    checks: checks.checks,
    pauseKeys: undefined,
    attempt,
    page: checkpoint?.page ?? 0,
    // A page request is read, never changed in place: the first page's is the job's own.
    request: checkpoint?.request ?? job.request,
    objects: checkpoint?.objects,
    startedAt: checkpoint?.startedAt ?? services.now(),
    throttled: 0,
    // Every field a job will have, from the start: fields added later would cost each job an
    // extra properties array, kept alive (and promoted) by the job that holds it.
    reservation: undefined,
    reservedAt: undefined,
    reservedChecks: undefined,
    lastStatus: undefined,
    nextInLine: undefined,
  };
}
