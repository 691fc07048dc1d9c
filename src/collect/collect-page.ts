import type { NodeServices } from '../actors/services.ts';
import type { ApiConfig, SourceConfig } from '../config/schema.ts';
import { HttpFailure, type HttpRequest, type HttpResponse } from '../http/http-client.ts';
import { tryParseJson } from '../limits/json-path.ts';
import { holdsPlaces, paceMs } from '../limits/ledger.ts';
import { resolveScope, templateVars } from '../limits/limit-keys.ts';
import { nextPage, pageUrl } from '../limits/pagination.ts';
import { classifyResponse } from '../limits/signals.ts';
import { usageAdvice } from '../limits/usage.ts';
import type { Work } from '../messages/work.ts';
import { checkUrlAllowed, redactUrl, stripCredentials } from '../messages/url-policy.ts';
import { pageObjectKey } from '../messages/object-key.ts';
import { backoffDelay } from '../runtime/backoff.ts';

/** What one call (one page) came to. */
export type PageOutcome =
  | { kind: 'next-page' }
  | { kind: 'finished' }
  /** `slowIntervalMs`: the scope is slowed to one call per interval, not paused. */
  | { kind: 'throttled'; scope: string; until: number; reason: string; slowIntervalMs?: number }
  | { kind: 'retry'; reason: string; notBefore?: number }
  | { kind: 'reject'; reason: string }
  /** The call waited so long for a collector that its slot lapsed, and no new one is free yet. */
  | { kind: 'slot-lapsed'; reason: string };

/**
 * Fetches the work's next page, stores it, and finds the page after it. Updates `work` in place
 * (page index, request, objects). Throws only for bugs; every expected failure is an outcome.
 */
export async function collectPage(work: Work, services: NodeServices): Promise<PageOutcome> {
  const { job } = work;
  const source = services.config.sources[job.source];
  const api = source?.apis[job.api];
  if (source === undefined || api === undefined) {
    releasePlaces(work, services);
    return { kind: 'reject', reason: `source ${job.source}/${job.api} left the config` };
  }
  const problem = checkUrlAllowed(work.request.url, source.allowHosts);
  if (problem !== undefined) {
    releasePlaces(work, services);
    return { kind: 'reject', reason: `page ${work.page}: ${problem}` };
  }

  const lapsed = await retakeLateSlot(work, services);
  if (lapsed !== undefined) return lapsed;
  const request = buildRequest(work, services);
  const started = services.now();
  let response: HttpResponse;
  const allowance = services.ledger.sendAllowanceMs;
  try {
    services.stats.calls++;
    response = await services.http.send(request, {
      timeoutMs: services.config.node.requestTimeout,
      maxBodyBytes: services.config.node.maxBodyBytes,
      // The ledger counts the slot up to this time only (RateLedger.sendAllowanceMs).
      ...(allowance !== undefined && work.reservation !== undefined && work.reservedAt !== undefined
        ? { leaveBy: work.reservedAt + allowance }
        : {}),
      onSend: (at) => {
        if (work.reservedAt !== undefined) services.stats.sendLag.record(at - work.reservedAt);
        // The slot counts from when the call really leaves, not from when it was granted; a
        // ledger with an allowance learns it even when it left at once (it counted the latest time).
        if (work.reservation !== undefined && (allowance !== undefined || at > (work.reservedAt ?? at))) {
          const marked = services.ledger.markSent(work.reservation, work.reservedChecks ?? work.checks, at);
          // The KV ledger answers later; the one in memory has already moved the slot.
          if (marked instanceof Promise)
            marked.catch((error: unknown) =>
              services.log.warn(
                { err: error, key: work.key },
                'ledger unavailable: the slot stays where the ledger counted it',
              ),
            );
        }
      },
    });
  } catch (error) {
    if (error instanceof HttpFailure && error.kind === 'late') {
      // Never sent: no call. Its slot goes back to the ledger (and this key waits for a new one
      // from now, not a whole window after the latest time the lapsed one allowed).
      services.stats.calls--;
      services.stats.lapsedSlots++;
      await cancelUnsent(work, services);
      return { kind: 'slot-lapsed', reason: error.message };
    }
    services.stats.callFailures++;
    if (error instanceof HttpFailure) {
      if (error.kind === 'body-too-large' || error.kind === 'blocked-address')
        return { kind: 'reject', reason: error.message };
      return { kind: 'retry', reason: `${error.kind}: ${error.message}` };
    }
    throw error;
  } finally {
    services.stats.latency.record(services.now() - started);
    // The platform is done with the call: its place under a concurrency cap is free (storing
    // the page below is no call).
    releasePlaces(work, services);
  }
  // The body stays in the node's body budget until it is stored (or dropped): not just read.
  try {
    return await handleResponse(work, response, source, api, services);
  } finally {
    response.release();
  }
}

/** Applies the answer's signals, stores the page and finds the next one. */
async function handleResponse(
  work: Work,
  response: HttpResponse,
  source: SourceConfig,
  api: ApiConfig,
  services: NodeServices,
): Promise<PageOutcome> {
  const { job } = work;
  work.lastStatus = response.status;
  await applyUsage(work, response.headers, services);
  let parsed: unknown;
  let parsedDone = false;
  const json = (): unknown => {
    if (!parsedDone) {
      parsed = tryParseJson(response.body);
      parsedDone = true;
    }
    return parsed;
  };
  const outcome = classifyResponse(
    {
      status: response.status,
      headers: response.headers,
      get json() {
        return json();
      },
      bodyText: () => response.body.subarray(0, 2048).toString('utf8'),
    },
    source.signals,
    services.now(),
  );
  switch (outcome.kind) {
    case 'throttled': {
      const scope =
        resolveScope(outcome.scope, source, templateVars(job, services.nodeName)) ?? outcome.scope;
      const throttled: PageOutcome = {
        kind: 'throttled',
        scope,
        until: outcome.until,
        reason: outcome.reason,
      };
      if (outcome.slow !== undefined)
        throttled.slowIntervalMs =
          outcome.slow.intervalMs ?? outcome.slow.factor * (paceMs(work.checks) || 1_000);
      return throttled;
    }
    case 'retry':
      services.stats.callFailures++;
      return outcome;
    case 'reject':
      services.stats.callFailures++;
      return outcome;
    case 'ok':
      break;
  }

  const key = pageObjectKey(job, work.page);
  const secret = job.auth !== undefined ? services.credentials.get(job.source, job.auth)?.secret : undefined;
  const stored = await putWithRetry(
    key,
    { ...response, body: withoutSecret(response.body, secret) },
    services,
  );
  if (stored === undefined) return { kind: 'retry', reason: `storage unavailable for ${key}` };
  const objects = (work.objects ??= []);
  objects.push(stored);
  services.stats.pagesStored++;
  services.stats.bytesStored += stored.bytes;

  // An API without pagination has one page: its body need not be parsed for a next one.
  if (api.paginate === undefined) return { kind: 'finished' };
  const next = nextPage(json(), work.request, api.paginate);
  if ('error' in next) return { kind: 'reject', reason: `page ${work.page}: ${next.error}` };
  if (next.done) return { kind: 'finished' };
  if (work.page + 1 >= api.maxPages)
    return { kind: 'reject', reason: `more than maxPages (${api.maxPages}) pages` };
  const nextProblem = checkUrlAllowed(next.request.url, source.allowHosts);
  if (nextProblem !== undefined)
    return { kind: 'reject', reason: `next page ${redactUrl(next.request.url)}: ${nextProblem}` };
  work.page++;
  // Credentials the platform echoed into its next URL are not kept; the node adds its own per call.
  work.request = { url: stripCredentials(next.request.url), query: next.request.query };
  // The page is stored: from here a redelivered job continues with the next one. Without NATS
  // the checkpoint is skipped; a redelivery then fetches again from the last one that was saved.
  await services.checkpoints
    .save(job.id, {
      page: work.page,
      request: work.request,
      objects,
      startedAt: work.startedAt,
    })
    .catch((error: unknown) =>
      services.log.warn({ err: error, job: job.id }, 'checkpoint not saved: NATS unavailable'),
    );
  return { kind: 'next-page' };
}

/**
 * A slot counts from when it was taken (in memory), or until the latest time its call may leave
 * (KV, see RateLedger.sendAllowanceMs). A call that waited for a collector longer than half the
 * margin, or half that allowance, would otherwise leave while a call that came after its window,
 * on this node or another, is still inside it, or be stopped as late: it takes its slot again at
 * the time it really leaves, or goes back to its throttle to wait for the next one.
 */
async function retakeLateSlot(work: Work, services: NodeServices): Promise<PageOutcome | undefined> {
  if (work.reservation === undefined || work.reservedAt === undefined) return undefined;
  const now = services.now();
  // A ledger that counts a slot until the latest time its call may leave needs a new one only
  // when that time is near; half of it is left for the call to get through the event loop.
  const allowance = services.ledger.sendAllowanceMs;
  const tolerance = allowance !== undefined ? allowance / 2 : services.config.node.limitMargin / 2;
  if (now - work.reservedAt <= tolerance) return undefined;
  const checks = work.reservedChecks ?? work.checks;
  let slot;
  try {
    slot = await services.ledger.retake(work.reservation, checks, now);
  } catch (error) {
    // NATS restarting: no call leaves without a slot; the throttle waits until the ledger is back.
    work.reservation = undefined;
    return { kind: 'slot-lapsed', reason: `ledger unavailable: ${(error as Error).message}` };
  }
  if (!slot.granted) {
    work.reservation = undefined;
    services.stats.lapsedSlots++;
    return { kind: 'slot-lapsed', reason: slot.reason };
  }
  work.reservation = slot.id;
  work.reservedAt = slot.at;
  return undefined;
}

/**
 * Gives back the slot and places of a call that never left. A ledger that does not answer keeps
 * them counted, which only makes calls wait longer; the places are not given back twice.
 */
async function cancelUnsent(work: Work, services: NodeServices): Promise<void> {
  if (work.reservation === undefined) return;
  const reservation = work.reservation;
  work.reservation = undefined;
  try {
    await services.ledger.cancel(reservation, work.reservedChecks ?? work.checks);
  } catch (error) {
    services.log.warn(
      { err: error, key: work.key },
      'ledger unavailable: the unsent call stays counted until its slot lapses',
    );
  }
}

/** Gives back the call's places under concurrency caps, on every node's view (fire and forget). */
function releasePlaces(work: Work, services: NodeServices): void {
  const checks = work.reservedChecks ?? work.checks;
  if (work.reservation === undefined || !holdsPlaces(checks)) return;
  services.ledger
    .release(work.reservation, checks)
    .catch((error: unknown) =>
      services.log.warn(
        { err: error, key: work.key },
        'ledger unavailable: a place under a concurrency cap lapses by itself',
      ),
    );
}

/** Pauses or slows the scopes a platform's usage headers say are nearly spent (every node sees it). */
async function applyUsage(
  work: Work,
  headers: Record<string, string>,
  services: NodeServices,
): Promise<void> {
  const source = services.config.sources[work.job.source];
  if (source === undefined) return;
  const now = services.now();
  for (const advice of usageAdvice(headers, source.usage, now)) {
    const scope = resolveScope(advice.scope, source, { ...work.job, node: services.nodeName });
    if (scope === undefined) continue;
    try {
      if (advice.action === 'pause') await services.ledger.pause(scope, advice.until, advice.reason);
      else await services.ledger.slow(scope, advice.until, advice.intervalMs, advice.reason, now);
    } catch (error) {
      // The page is fetched and paid for: store it. The advice holds on this node (the ledger
      // keeps it in memory first); other nodes miss it while NATS is away.
      services.log.warn({ err: error, scope }, 'ledger unavailable: usage advice kept on this node only');
    }
  }
}

/** Platforms echo the caller's token (Meta's paging.next): it must not land in stored objects. */
export function withoutSecret(body: Buffer, secret: string | undefined): Buffer {
  if (secret === undefined || secret.length < 4 || body.indexOf(secret) < 0) return body;
  return Buffer.from(body.toString('utf8').replaceAll(secret, 'REDACTED'), 'utf8');
}

function buildRequest(work: Work, services: NodeServices): HttpRequest {
  const { job } = work;
  const url = new URL(pageUrl(work.request));
  const headers: Record<string, string> = { accept: 'application/json', ...lower(job.request.headers) };
  if (job.auth !== undefined) services.credentials.get(job.source, job.auth)?.apply(headers, url);
  const request: HttpRequest = { method: job.request.method, url: url.toString(), headers };
  if (job.request.method === 'POST' && job.request.body !== null && job.request.body !== undefined) {
    request.body = JSON.stringify(job.request.body);
    headers['content-type'] ??= 'application/json';
  }
  return request;
}

function lower(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/**
 * Stores a page, riding out a storage outage of up to about a minute in place: the body is in
 * memory and was paid for with API quota, so fetching it again is the last resort.
 */
async function putWithRetry(key: string, response: HttpResponse, services: NodeServices) {
  const contentType = response.headers['content-type'] ?? 'application/octet-stream';
  for (let attempt = 1; attempt <= 8; attempt++) {
    try {
      return await services.storage.put(key, response.body, contentType);
    } catch (error) {
      services.stats.storageRetries++;
      services.log.warn({ err: error, key, attempt }, 'storing a page failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, 500, 15_000)));
    }
  }
  return undefined;
}
