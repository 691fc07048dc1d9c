/**
 * Subject tokens cannot hold `.`, `*`, `>` or whitespace, yet account ids can (Google's
 * `123-456-7890` is fine, but an app bundle id `com.example.app` is not). Such characters are
 * written as `%XX` (UTF-8 bytes, upper-case hex), and `%` itself too, so the encoding is
 * reversible and plain ids stay readable.
 */
const SAFE_TOKEN_CHAR = /[A-Za-z0-9_\-+=:@!$&'(),;~]/;
const SAFE_TOKEN = /^[A-Za-z0-9_\-+=:@!$&'(),;~]*$/;

export function encodeToken(value: string): string {
  // Most ids need no encoding: one test, no copy (the router encodes three per job).
  if (SAFE_TOKEN.test(value)) return value;
  let out = '';
  for (const ch of value) {
    if (SAFE_TOKEN_CHAR.test(ch)) out += ch;
    else
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeToken(token: string): string {
  if (!/^(?:[^%]|%[0-9A-Fa-f]{2})*$/.test(token)) throw new Error(`malformed subject token "${token}"`);
  try {
    return decodeURIComponent(token);
  } catch {
    throw new Error(`subject token "${token}" is not valid percent-encoded UTF-8`);
  }
}

export const JOBS_PREFIX = 'prism.jobs';
export const RESULTS_PREFIX = 'prism.results';
export const DLQ_PREFIX = 'prism.dlq';
export const DLQ_INVALID_SUBJECT = 'prism.dlq.invalid';
export const CONTROL_PREFIX = 'prism.ctl';

export interface KeyParts {
  source: string;
  api: string;
  account: string;
}

export function keySubject(prefix: string, parts: KeyParts): string {
  return `${prefix}.${encodeToken(parts.source)}.${encodeToken(parts.api)}.${encodeToken(parts.account)}`;
}

export const jobSubject = (parts: KeyParts): string => keySubject(JOBS_PREFIX, parts);
export const resultSubject = (parts: KeyParts): string => keySubject(RESULTS_PREFIX, parts);
export const dlqSubject = (parts: KeyParts): string => keySubject(DLQ_PREFIX, parts);

/** Parses `prism.jobs.<source>.<api>.<account>`; throws with the reason when it is not one. */
export function parseJobSubject(subject: string): KeyParts {
  const tokens = subject.split('.');
  if (tokens.length !== 5 || `${tokens[0]}.${tokens[1]}` !== JOBS_PREFIX) {
    throw new Error(`subject "${subject}" is not ${JOBS_PREFIX}.<source>.<api>.<account>`);
  }
  return {
    source: decodeToken(tokens[2] as string),
    api: decodeToken(tokens[3] as string),
    account: decodeToken(tokens[4] as string),
  };
}

/** The throttle key of a job: one throttle actor per key. */
export const throttleKey = (parts: KeyParts): string =>
  `${encodeToken(parts.source)}.${encodeToken(parts.api)}.${encodeToken(parts.account)}`;
