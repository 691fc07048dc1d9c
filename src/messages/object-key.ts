import type { Job } from './job.ts';

/** One path segment from any string: no `/`, and never `.` or `..` (no escaping the prefix). */
export function keySegment(value: string): string {
  const encoded = encodeURIComponent(value);
  return encoded.startsWith('.') ? `%2E${encoded.slice(1)}` : encoded;
}

/**
 * Where page `page` of a job is stored. Deterministic from the job id, so a redelivered or
 * duplicated job overwrites its own objects instead of doubling the data.
 */
export function pageObjectKey(job: Pick<Job, 'source' | 'api' | 'account' | 'id'>, page: number): string {
  const account = keySegment(job.account);
  return `${keySegment(job.source)}/${keySegment(job.api)}/${account}/${keySegment(job.id)}/page-${String(page).padStart(5, '0')}.json`;
}
