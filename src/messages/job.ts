import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { PrismConfig, SourceConfig } from '../config/schema.ts';
import { canonicalJson } from './canonical-json.ts';
import { parseJobSubject, type KeyParts } from './subject.ts';
import { checkUrlAllowed, redactUrl } from './url-policy.ts';

/** A validated collection job: one API request (and its pages) for one key. */
export interface Job {
  id: string;
  source: string;
  api: string;
  account: string;
  request: JobRequest;
  /** Name of a credential in the node's config; never the secret itself. */
  auth?: string;
  meta: Record<string, unknown>;
}

export interface JobRequest {
  method: 'GET' | 'POST';
  url: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
}

export type JobParse =
  { ok: true; job: Job } | { ok: false; reason: string; parts?: KeyParts; raw?: unknown };

/** Job ids become object-key segments: keep them to a safe, readable alphabet. */
const JOB_ID = /^[A-Za-z0-9_\-:=+@,][A-Za-z0-9_.\-:=+@,]{0,199}$/;

/** Header and query names that carry credentials: jobs name credentials, nodes resolve them. */
const SECRET_NAME =
  /(^|[-_])(authorization|auth|token|access[-_]?token|refresh[-_]?token|secret|client[-_]?secret|app[-_]?secret|api[-_]?key|apikey|key|password|passwd|signature|cookie|session)($|[-_])/i;
/** Headers the HTTP client owns; a job setting them could smuggle requests. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-connection',
  'expect',
]);

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const JobSchema = z.strictObject({
  id: z.string().optional(),
  source: z.string().min(1).max(100).optional(),
  api: z.string().min(1).max(100).optional(),
  account: z.string().min(1).max(200).optional(),
  request: z.strictObject({
    method: z.enum(['GET', 'POST']).default('GET'),
    url: z.string().min(1).max(8192),
    query: z.record(z.string().min(1).max(200), scalar).default({}),
    headers: z.record(z.string().min(1).max(200), z.string().max(8192)).default({}),
    body: z.unknown().default(null),
  }),
  auth: z.string().min(1).max(200).optional(),
  meta: z.record(z.string(), z.unknown()).default({}),
});

export interface ParseJobInput {
  subject: string;
  /** The payload's bytes, or its text once decoded as UTF-8 (a byte-order mark kept: see payloadText). */
  data: string | Uint8Array;
  /** The `Nats-Msg-Id` header, when the producer set one. */
  msgId?: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A payload's text, or undefined when it is not valid UTF-8. A byte-order mark stays, so the text
 * encodes back to the same bytes (`payloadBytes`, a dead letter's `originalBytes`).
 */
export function payloadText(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A payload's size in bytes, kept as text or as bytes. */
export function payloadBytes(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
}

/**
 * Turns a raw job message into a `Job`, or says precisely why not. Never throws: a job that
 * cannot be parsed is a dead letter, not a crash.
 */
export function parseJob(input: ParseJobInput, config: PrismConfig): JobParse {
  let parts: KeyParts;
  try {
    parts = parseJobSubject(input.subject);
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  const maxBytes = config.node.maxJobBytes;
  const bytes = payloadBytes(input.data);
  if (bytes > maxBytes) {
    return { ok: false, parts, reason: `job is ${bytes} bytes; the limit is ${maxBytes}` };
  }
  let text = typeof input.data === 'string' ? input.data : payloadText(input.data);
  if (text === undefined) return { ok: false, parts, reason: 'job is not valid UTF-8' };
  // JSON has no byte-order mark; a producer's is tolerated (a TextDecoder drops it by default).
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, parts, reason: `malformed JSON: ${(error as Error).message}` };
  }
  const parsed = JobSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      parts,
      raw,
      reason: `invalid job: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`,
    };
  }
  const value = parsed.data;
  for (const field of ['source', 'api', 'account'] as const) {
    const inBody = value[field];
    if (inBody !== undefined && inBody !== parts[field]) {
      return {
        ok: false,
        parts,
        raw,
        reason: `job ${field} "${inBody}" does not match the subject's "${parts[field]}"`,
      };
    }
  }
  const reason = checkAgainstConfig(parts, value, config);
  if (reason !== undefined) return { ok: false, parts, raw, reason };

  let id = value.id;
  if (id !== undefined) {
    if (!JOB_ID.test(id)) {
      return {
        ok: false,
        parts,
        raw,
        reason: `job id "${id.slice(0, 80)}" must be 1-200 of A-Z a-z 0-9 _ . - : = + @ , and not start with "."`,
      };
    }
    // Usually the producer's Nats-Msg-Id too: one string for both, held as long as the job.
    if (id === input.msgId) id = input.msgId;
  } else if (input.msgId !== undefined && JOB_ID.test(input.msgId)) {
    id = input.msgId;
  } else {
    id = deriveJobId(parts, value.request, value.auth, value.meta, input.msgId);
  }
  const job: Job = { id, ...parts, request: value.request, meta: value.meta };
  if (value.auth !== undefined) job.auth = value.auth;
  return { ok: true, job };
}

/**
 * A job's text with anything that looks like a credential blanked (secret-named headers and
 * query parameters, user-info and credential parameters in the URL): a job rejected for carrying
 * a secret goes to the DLQ without it.
 */
export function redactJobText(text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text.replace(
      /((?:access_token|token|api_key|apikey|secret|password|authorization)"?\s*[:=]\s*"?)[^"&\s,}]+/gi,
      '$1REDACTED',
    );
  }
  const request = (value as { request?: Record<string, unknown> } | null)?.request;
  if (request === null || typeof request !== 'object') return text;
  for (const field of ['headers', 'query'] as const) {
    const entries = request[field];
    if (entries === null || typeof entries !== 'object') continue;
    for (const name of Object.keys(entries)) {
      if (SECRET_NAME.test(name) || RESERVED_HEADERS.has(name.toLowerCase()))
        (entries as Record<string, unknown>)[name] = 'REDACTED';
    }
  }
  if (typeof request.url === 'string') request.url = redactUrl(request.url);
  return JSON.stringify(value);
}

/** The same job always gets the same id, so a re-published job overwrites its own objects. */
export function deriveJobId(
  parts: KeyParts,
  request: JobRequest,
  auth: string | undefined,
  meta: Record<string, unknown>,
  msgId?: string,
): string {
  const hash = createHash('sha256')
    .update(canonicalJson(msgId !== undefined ? { msgId } : { ...parts, request, auth, meta }))
    .digest('hex');
  return `j-${hash.slice(0, 32)}`;
}

function checkAgainstConfig(
  parts: KeyParts,
  value: z.output<typeof JobSchema>,
  config: PrismConfig,
): string | undefined {
  const source: SourceConfig | undefined = Object.hasOwn(config.sources, parts.source)
    ? config.sources[parts.source]
    : undefined;
  if (source === undefined) return `unknown source "${parts.source}"`;
  if (!Object.hasOwn(source.apis, parts.api))
    return `unknown api "${parts.api}" for source "${parts.source}"`;
  const urlProblem = checkUrlAllowed(value.request.url, source.allowHosts);
  if (urlProblem !== undefined) return urlProblem;
  for (const [name, headerValue] of Object.entries(value.request.headers)) {
    const lower = name.toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return `header name "${name}" is not a valid token`;
    if (/[\r\n\0]/.test(headerValue)) return `header "${name}" holds a line break or NUL`;
    if (RESERVED_HEADERS.has(lower)) return `header "${name}" is set by the node, not by jobs`;
    if (SECRET_NAME.test(lower)) {
      return `header "${name}" looks like a credential: name one in "auth" instead of sending secrets in jobs`;
    }
  }
  for (const name of [
    ...Object.keys(value.request.query),
    ...new URL(value.request.url).searchParams.keys(),
  ]) {
    if (SECRET_NAME.test(name)) {
      return `query parameter "${name}" looks like a credential: name one in "auth" instead of sending secrets in jobs`;
    }
  }
  if (value.auth !== undefined && !Object.hasOwn(source.auth, value.auth)) {
    return `unknown auth "${value.auth}" for source "${parts.source}"`;
  }
  if (value.request.method === 'GET' && value.request.body !== null && value.request.body !== undefined) {
    return 'a GET request cannot have a body';
  }
  return undefined;
}
