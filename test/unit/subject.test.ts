import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  allIn,
  decodeToken,
  encodeToken,
  jobSubject,
  parseJobSubject,
  SAFE_TOKEN_CODES,
  throttleKey,
} from '../../src/messages/subject.ts';
import { URI_UNRESERVED } from '../../src/limits/limit-keys.ts';
import { keySegment, pageObjectKey } from '../../src/messages/object-key.ts';

describe('subject tokens', () => {
  it('keeps plain ids readable and encodes what NATS forbids', () => {
    expect(encodeToken('act_123')).toBe('act_123');
    expect(encodeToken('123-456-7890')).toBe('123-456-7890');
    expect(encodeToken('com.example.app')).toBe('com%2Eexample%2Eapp');
    expect(encodeToken('a b*c>d%')).toBe('a%20b%2Ac%3Ed%25');
  });

  it('the no-copy fast paths keep exactly the characters their encodings leave alone', () => {
    for (let code = 0; code < 128; code++) {
      const ch = String.fromCharCode(code);
      expect(allIn(ch, SAFE_TOKEN_CODES), `token ${JSON.stringify(ch)}`).toBe(
        /[A-Za-z0-9_\-+=:@!$&'(),;~]/.test(ch),
      );
      expect(allIn(ch, URI_UNRESERVED), `uri ${JSON.stringify(ch)}`).toBe(encodeURIComponent(ch) === ch);
    }
    expect(allIn('123-456-7890', SAFE_TOKEN_CODES)).toBe(true);
    expect(allIn('café', URI_UNRESERVED)).toBe(false);
  });

  it('round-trips any string and never yields a forbidden character (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), (value) => {
        const token = encodeToken(value);
        expect(token).not.toMatch(/[.*>\s]/);
        expect(decodeToken(token)).toBe(value);
      }),
    );
  });

  it('builds throttle keys from encoded tokens, whichever source and api came before', () => {
    const keys = [
      throttleKey({ source: 'meta', api: 'insights', account: 'act_1' }),
      throttleKey({ source: 'meta', api: 'ads', account: 'act_1' }),
      throttleKey({ source: 'tiktok', api: 'insights', account: 'act_1' }),
      throttleKey({ source: 'meta', api: 'insights', account: 'com.example.app' }),
      throttleKey({ source: 'a.b', api: 'c', account: 'd' }),
      throttleKey({ source: 'a', api: 'b.c', account: 'd' }),
    ];
    expect(keys).toEqual([
      'meta.insights.act_1',
      'meta.ads.act_1',
      'tiktok.insights.act_1',
      'meta.insights.com%2Eexample%2Eapp',
      'a%2Eb.c.d',
      'a.b%2Ec.d',
    ]);
  });

  it('parses job subjects and rejects others with the reason', () => {
    expect(parseJobSubject(jobSubject({ source: 'appsflyer', api: 'installs', account: 'com.app' }))).toEqual(
      {
        source: 'appsflyer',
        api: 'installs',
        account: 'com.app',
      },
    );
    expect(() => parseJobSubject('prism.jobs.meta.insights')).toThrow(/prism\.jobs\.<source>/);
    expect(() => parseJobSubject('prism.jobs.meta.insights.%ZZ')).toThrow(/malformed/);
  });
});

describe('object keys', () => {
  it('are deterministic and stay inside their prefix', () => {
    const job = { source: 'meta', api: 'insights', account: '../../etc', id: 'j-1' };
    expect(pageObjectKey(job, 0)).toBe('meta/insights/%2E.%2F..%2Fetc/j-1/page-00000.json');
    expect(pageObjectKey(job, 12)).toBe(pageObjectKey(job, 12));
    fc.assert(
      fc.property(fc.string(), (value) => {
        const segment = keySegment(value);
        expect(segment).not.toContain('/');
        expect(segment === '.' || segment === '..').toBe(false);
        expect(segment.startsWith('.')).toBe(false);
      }),
    );
  });
});
