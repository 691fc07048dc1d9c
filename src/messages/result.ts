import type { StoredObject } from '../storage/storage.ts';

/** One event per finished job on `prism.results.<source>.<api>.<account>`. */
export interface ResultEvent {
  id: string;
  source: string;
  api: string;
  account: string;
  status: 'ok';
  objects: StoredObject[];
  pages: number;
  attempts: number;
  httpStatus: number;
  node: string;
  startedAt: string;
  finishedAt: string;
  meta?: Record<string, unknown>;
}

/** A job that could not be done, on `prism.dlq.<source>.<api>.<account>` or `prism.dlq.invalid`. */
export interface DeadLetter {
  /** Job id when the job parsed far enough to have one. */
  id?: string;
  source?: string;
  api?: string;
  account?: string;
  reason: string;
  /** `invalid` (never valid), `failed` (attempts used up), `rejected` (a permanent API error), `poison` (crashed the node's actors). */
  kind: 'invalid' | 'failed' | 'rejected' | 'poison';
  attempts: number;
  httpStatus?: number;
  node: string;
  subject: string;
  /** The original job message as text (truncated when huge), so it can be fixed and re-published. */
  original: string;
  originalBytes: number;
  at: string;
}
