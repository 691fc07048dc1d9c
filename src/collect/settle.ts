import type { NodeServices } from '../actors/services.ts';
import type { JobMessage } from '../bus/job-message.ts';
import type { DeadLetter, ResultEvent } from '../messages/result.ts';
import type { KeyParts } from '../messages/subject.ts';
import type { Work } from '../messages/work.ts';
import { backoffDelay } from '../runtime/backoff.ts';
import { payloadBytes, redactJobText } from '../messages/job.ts';

/**
 * How a job leaves the node. The JetStream message is acked only after what the job produced
 * (objects and result event, or its dead letter) is stored: a crash before that redelivers it.
 */

export async function finishJob(work: Work, services: NodeServices): Promise<void> {
  const { job } = work;
  const event: ResultEvent = {
    id: job.id,
    source: job.source,
    api: job.api,
    account: job.account,
    status: 'ok',
    objects: work.objects ?? [],
    pages: work.objects?.length ?? 0,
    attempts: work.attempt,
    httpStatus: work.lastStatus ?? 200,
    node: services.nodeName,
    startedAt: new Date(work.startedAt).toISOString(),
    finishedAt: new Date(services.now()).toISOString(),
  };
  if (Object.keys(job.meta).length > 0) event.meta = job.meta;
  await withRetries(() => services.publisher.result(event), 'publishing a result', services);
  await ackOrLeave(work.message, services);
  if (work.page > 0) await services.checkpoints.clear(job.id).catch(() => undefined);
  if (work.attempt > 1) await services.attempts.clear(job.id).catch(() => undefined);
  services.stats.jobsDone++;
}

/** A failure worth another attempt: back to JetStream with a growing delay, or the DLQ at the end. */
export async function retryOrDeadLetter(
  work: Work,
  reason: string,
  services: NodeServices,
  notBefore?: number,
): Promise<void> {
  const { node } = services.config;
  const failures = await services.attempts.recordFailure(work.job.id).catch(() => work.attempt);
  if (failures >= node.maxAttempts) {
    await deadLetterWork(work, 'failed', `${reason} (after ${failures} attempts)`, services);
    return;
  }
  const delay = Math.max(
    backoffDelay(failures, node.backoffBase, node.backoffMax),
    (notBefore ?? 0) - services.now(),
  );
  services.log.info(
    { job: work.job.id, key: work.key, reason, attempt: failures, retryInMs: delay },
    'job will be retried',
  );
  services.stats.jobsRetried++;
  work.message.nak(delay);
}

export async function deadLetterWork(
  work: Work,
  kind: DeadLetter['kind'],
  reason: string,
  services: NodeServices,
): Promise<void> {
  const { job } = work;
  if (work.page > 0) await services.checkpoints.clear(job.id).catch(() => undefined);
  await deadLetter(
    work.message,
    { source: job.source, api: job.api, account: job.account },
    { id: job.id, kind, reason, attempts: work.attempt, httpStatus: work.lastStatus },
    services,
  );
}

export async function deadLetter(
  message: JobMessage,
  parts: KeyParts | undefined,
  detail: {
    id?: string;
    kind: DeadLetter['kind'];
    reason: string;
    attempts: number;
    httpStatus?: number | undefined;
  },
  services: NodeServices,
): Promise<void> {
  const { data } = message;
  const text = redactJobText(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  const letter: DeadLetter = {
    ...(detail.id !== undefined ? { id: detail.id } : {}),
    ...(parts !== undefined ? { source: parts.source, api: parts.api, account: parts.account } : {}),
    reason: detail.reason,
    kind: detail.kind,
    attempts: detail.attempts,
    ...(detail.httpStatus !== undefined ? { httpStatus: detail.httpStatus } : {}),
    node: services.nodeName,
    subject: message.subject,
    original: text.length > 64 * 1024 ? `${text.slice(0, 64 * 1024)}…` : text,
    originalBytes: payloadBytes(data),
    at: new Date().toISOString(),
  };
  await withRetries(() => services.publisher.deadLetter(letter), 'publishing a dead letter', services);
  await ackOrLeave(message, services);
  services.stats.jobsDeadLettered++;
  services.log.warn(
    { job: detail.id, subject: message.subject, kind: detail.kind, reason: detail.reason },
    'job dead-lettered',
  );
}

/**
 * An ack that fails (NATS restarting) is not the job's fault: JetStream redelivers it after
 * ack_wait, and the redelivery overwrites the same objects and result id.
 */
async function ackOrLeave(message: JobMessage, services: NodeServices): Promise<void> {
  try {
    await message.ack();
  } catch (error) {
    services.log.warn(
      { err: error, subject: message.subject },
      'ack failed; JetStream will redeliver the job',
    );
  }
}

/** NATS may be reconnecting: try for a while before giving up (the job is then redelivered). */
async function withRetries(action: () => Promise<void>, what: string, services: NodeServices): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      return;
    } catch (error) {
      if (attempt >= 10) throw error;
      services.log.warn({ err: error, attempt }, `${what} failed; retrying`);
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, 200, 5_000)));
    }
  }
}
