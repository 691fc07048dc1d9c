/**
 * Opaque pagination cursors, like the platforms' own: a client must send back what it was given
 * and cannot guess the next one, so the emulator notices a client that builds its own cursors.
 * Pages count from 1; the first page is asked for without a cursor.
 */

const PREFIX = 'prism-page:';
/** Far above any real report; keeps a forged cursor from turning into a huge number. */
export const MAX_PAGE = 10_000_000;

export function encodeCursor(page: number): string {
  if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE) throw new RangeError(`bad page: ${page}`);
  return Buffer.from(`${PREFIX}${page}`, 'utf8').toString('base64url');
}

/** The page a cursor points to, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): number | undefined {
  if (cursor.length === 0 || cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) return undefined;
  const digits = text.slice(PREFIX.length);
  if (!/^[1-9][0-9]{0,7}$/.test(digits)) return undefined;
  const page = Number(digits);
  // Base64url decoding is lenient (trailing bits); only accept the canonical spelling.
  return page <= MAX_PAGE && encodeCursor(page) === cursor ? page : undefined;
}
