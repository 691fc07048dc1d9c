import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { deriveJobId, type JobRequest } from '../messages/job.ts';
import { jobSubject } from '../messages/subject.ts';

/** A job as a producer writes it: `source`, `api`, `account` are required here (they make the subject). */
export interface JobInput {
  id?: string;
  source: string;
  api: string;
  account: string;
  request: Partial<JobRequest> & { url: string };
  auth?: string;
  meta?: Record<string, unknown>;
}

export type JobLineParse = { ok: true; job: JobInput; id: string } | { ok: false; reason: string };

/** Reads one NDJSON line of a job file; enough checking to build its subject (nodes check the rest). */
export function parseJobLine(line: string): JobLineParse {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { ok: false, reason: `malformed JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, reason: 'a job must be a JSON object' };
  }
  const job = value as Partial<JobInput>;
  for (const field of ['source', 'api', 'account'] as const) {
    if (typeof job[field] !== 'string' || job[field] === '') {
      return { ok: false, reason: `"${field}" must be a non-empty string` };
    }
  }
  if (job.request === null || typeof job.request !== 'object' || typeof job.request.url !== 'string') {
    return { ok: false, reason: '"request.url" must be a string' };
  }
  return { ok: true, job: job as JobInput, id: jobIdOf(job as JobInput) };
}

/** The id a node will give this job: its own, or the same hash the node derives. */
export function jobIdOf(job: JobInput): string {
  if (job.id !== undefined) return job.id;
  const request: JobRequest = {
    method: job.request.method ?? 'GET',
    url: job.request.url,
    query: Object.fromEntries(Object.entries(job.request.query ?? {}).map(([k, v]) => [k, String(v)])),
    headers: job.request.headers ?? {},
    body: job.request.body ?? null,
  };
  return deriveJobId(job, request, job.auth, job.meta ?? {});
}

/**
 * Publishes a job on `prism.jobs.<source>.<api>.<account>` (account ids with `.`, `*`, `>` or
 * spaces encoded), with its id as `Nats-Msg-Id` so a re-publish within two minutes is dropped.
 */
export async function publishJob(js: JetStreamClient, job: JobInput): Promise<string> {
  const id = jobIdOf(job);
  const h = natsHeaders();
  h.set('Nats-Msg-Id', id);
  await js.publish(jobSubject(job), JSON.stringify(job), { headers: h, timeout: 10_000 });
  return id;
}
