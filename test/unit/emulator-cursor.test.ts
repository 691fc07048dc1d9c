import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, MAX_PAGE } from '../../src/emulator/cursor.ts';

describe('emulator cursors', () => {
  it('round-trips every page', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_PAGE }), (page) => {
        const cursor = encodeCursor(page);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeCursor(cursor)).toBe(page);
      }),
    );
  });

  it('is opaque: not the page number', () => {
    expect(encodeCursor(2)).not.toMatch(/^\d+$/);
    expect(encodeCursor(2)).not.toBe(encodeCursor(3));
  });

  it('rejects cursors it did not make', () => {
    for (const bad of [
      '',
      '2',
      'abc',
      'a+b',
      'x'.repeat(100),
      Buffer.from('prism-page:0').toString('base64url'),
    ]) {
      expect(decodeCursor(bad)).toBeUndefined();
    }
    expect(decodeCursor(Buffer.from('prism-page:01').toString('base64url'))).toBeUndefined();
    expect(decodeCursor(Buffer.from('other:3').toString('base64url'))).toBeUndefined();
  });

  it('accepts only the canonical spelling', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (s) => {
        const page = decodeCursor(s);
        if (page !== undefined) expect(encodeCursor(page)).toBe(s);
      }),
    );
  });

  it('refuses pages out of range when encoding', () => {
    expect(() => encodeCursor(0)).toThrow(RangeError);
    expect(() => encodeCursor(1.5)).toThrow(RangeError);
    expect(() => encodeCursor(MAX_PAGE + 1)).toThrow(RangeError);
  });
});
