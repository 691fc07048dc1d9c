import type { PaginateConfig } from '../config/schema.ts';
import { readPath } from './json-path.ts';

export interface PageRequest {
  url: string;
  query: Record<string, string>;
}

export type NextPage = { done: true } | { done: false; request: PageRequest } | { error: string };

/**
 * The request for the page after this one, from the body the API sent. Meta puts a whole
 * `paging.next` URL in the body; others a cursor or page numbers to send back as a parameter.
 */
export function nextPage(
  json: unknown,
  current: PageRequest,
  paginate: PaginateConfig | undefined,
): NextPage {
  if (paginate === undefined) return { done: true };
  if (json === undefined) return { error: 'the page is not JSON, so its next page cannot be found' };
  if ('next' in paginate) {
    const next = readPath(json, paginate.next);
    if (next === undefined || next === null || next === '') return { done: true };
    if (typeof next !== 'string') return { error: `${paginate.next} is not a URL string` };
    // The next URL carries its own query (Meta's includes everything); do not add the first page's.
    return { done: false, request: { url: next, query: {} } };
  }
  if ('cursor' in paginate) {
    const cursor = readPath(json, paginate.cursor);
    if (cursor === undefined || cursor === null || cursor === '' || cursor === false) return { done: true };
    if (typeof cursor !== 'string' && typeof cursor !== 'number')
      return { error: `${paginate.cursor} is not a cursor` };
    if (String(cursor) === current.query[paginate.param])
      return { error: `cursor ${String(cursor)} repeats itself` };
    return {
      done: false,
      request: { url: current.url, query: { ...current.query, [paginate.param]: String(cursor) } },
    };
  }
  const page = Number(readPath(json, paginate.page));
  const total = Number(readPath(json, paginate.totalPages));
  if (!Number.isFinite(page) || !Number.isFinite(total))
    return { error: `${paginate.page}/${paginate.totalPages} missing` };
  if (page >= total) return { done: true };
  return {
    done: false,
    request: { url: current.url, query: { ...current.query, [paginate.param]: String(page + 1) } },
  };
}

/** The full URL of a page request: the URL's own query, then the job's query on top. */
export function pageUrl(request: PageRequest): string {
  const url = new URL(request.url);
  for (const [name, value] of Object.entries(request.query)) url.searchParams.set(name, value);
  return url.toString();
}
