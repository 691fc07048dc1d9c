/**
 * Subject tokens cannot hold `.`, `*`, `>` or whitespace, yet account ids can (Google's
 * `123-456-7890` is fine, but an app bundle id `com.example.app` is not). Such characters are
 * written as `%XX` (UTF-8 bytes, upper-case hex), and `%` itself too, so the encoding is
 * reversible and plain ids stay readable.
 */
const SAFE_TOKEN_CHAR = /[A-Za-z0-9_\-+=:@!$&'(),;~]/;
/** The ASCII characters a token keeps as they are (1), by character code. */
export const SAFE_TOKEN_CODES = asciiTable("A-Za-z0-9_+=:@!$&'(),;~-");

/**
 * An ASCII lookup table of the characters in `spec`: ranges are written `a-z`, so a `-` of its
 * own goes last. A short id is scanned against it as fast as a regular expression tests it.
 */
export function asciiTable(spec: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < spec.length; i++) {
    const from = spec.charCodeAt(i);
    if (spec[i + 1] === '-' && i + 2 < spec.length) {
      for (let c = from; c <= spec.charCodeAt(i + 2); c++) table[c] = 1;
      i += 2;
    } else table[from] = 1;
  }
  return table;
}

/** Whether every character of `value` is ASCII and in `table`. */
export function allIn(value: string, table: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 128 || table[code] === 0) return false;
  }
  return true;
}

export function encodeToken(value: string): string {
  // Most ids need no encoding: one scan, no copy (the router encodes three per job).
  if (allIn(value, SAFE_TOKEN_CODES)) return value;
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

/**
 * The throttle key of a job: one throttle actor per key. Its `<source>.<api>.` part is made once
 * per source and api, and the key is joined into one string: built by concatenation, each key
 * kept four strings alive (~120 B a key in a heap snapshot of bench/throttle --mode idle).
 */
export function throttleKey(parts: KeyParts): string {
  let byApi = keyPrefixes.get(parts.source);
  if (byApi === undefined) {
    byApi = new Map();
    // Jobs of unknown sources are dead-lettered before they have a key; stay bounded regardless.
    if (keyPrefixes.size < MAX_KEY_PREFIXES) keyPrefixes.set(parts.source, byApi);
  }
  let prefix = byApi.get(parts.api);
  if (prefix === undefined) {
    prefix = `${encodeToken(parts.source)}.${encodeToken(parts.api)}.`;
    if (byApi.size < MAX_KEY_PREFIXES) byApi.set(parts.api, prefix);
  }
  return [prefix, encodeToken(parts.account)].join('');
}

/** `<source>.<api>.` of the throttle keys made so far, by source, then api. */
const keyPrefixes = new Map<string, Map<string, string>>();
const MAX_KEY_PREFIXES = 1_000;
