import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/emulator/cursor.ts';
import { FaultBook } from '../../src/emulator/faults.ts';
import {
  CallParamError,
  pageParamOf,
  pageStyleOf,
  parseCallParams,
  requestedPage,
} from '../../src/emulator/params.ts';

const q = (s: string) => new URLSearchParams(s);

describe('call parameters', () => {
  it('has defaults', () => {
    expect(parseCallParams(q(''))).toEqual({
      pages: 1,
      rows: 10,
      size: 0,
      latencyMs: undefined,
      jitterMs: 0,
      fail: undefined,
      failTimes: Infinity,
      failPage: undefined,
      hang: false,
      reset: false,
      badjson: false,
      throttle: false,
      retryAfterMs: 1000,
      throttleCode: undefined,
      faultKey: undefined,
    });
  });

  it('reads every parameter', () => {
    const p = parseCallParams(
      q('pages=3&rows=2&size=5000&latency=200&jitter=5&fail=503&failTimes=2&failPage=2&hang=0&reset=false'),
    );
    expect(p).toMatchObject({ pages: 3, rows: 2, size: 5000, latencyMs: 200, jitterMs: 5, fail: 503 });
    expect(p).toMatchObject({ failTimes: 2, failPage: 2, hang: false, reset: false });
    expect(parseCallParams(q('throttle=1&throttleCode=4')).throttleCode).toBe(4);
    expect(parseCallParams(q('throttle=1&throttleCode=-10')).throttleCode).toBe(-10);
    expect(parseCallParams(q('hang=1&badjson=true&throttle&faultKey=k&retryAfter=2500'))).toMatchObject({
      hang: true,
      badjson: true,
      throttle: true,
      faultKey: 'k',
      retryAfterMs: 2500,
    });
  });

  it.each([
    'pages=0',
    'pages=x',
    'rows=-1',
    'fail=200',
    'fail=600',
    'latency=1.5',
    'hang=yes',
    'failPage=0',
    'throttleCode=4x',
    'throttleCode=',
  ])('rejects %s', (query) => {
    expect(() => parseCallParams(q(query))).toThrow(CallParamError);
  });

  it('maps styles to their way of paging', () => {
    expect(pageStyleOf('meta')).toBe('meta');
    expect(pageStyleOf('tiktok')).toBe('tiktok');
    expect(pageStyleOf('google')).toBe('generic');
    expect(pageStyleOf('kakao')).toBe('generic');
    expect(pageParamOf('meta')).toBe('after');
    expect(pageParamOf('tiktok')).toBe('page');
    expect(pageParamOf('generic')).toBe('cursor');
  });

  it('finds the requested page', () => {
    expect(requestedPage('meta', q(''))).toBe(1);
    expect(requestedPage('meta', q(`after=${encodeCursor(4)}`))).toBe(4);
    expect(requestedPage('generic', q(`cursor=${encodeCursor(2)}`))).toBe(2);
    expect(requestedPage('tiktok', q('page=7'))).toBe(7);
    expect(() => requestedPage('meta', q('after=forged'))).toThrow('invalid cursor');
    expect(() => requestedPage('generic', q('cursor=3'))).toThrow(CallParamError);
    expect(() => requestedPage('tiktok', q('page=0'))).toThrow(CallParamError);
  });
});

describe('FaultBook', () => {
  it('injects nothing without fault parameters', () => {
    const book = new FaultBook();
    expect(book.next(parseCallParams(q('pages=2')), '/a', 1)).toBeUndefined();
  });

  it('fails the first N calls of a URL, then succeeds', () => {
    const book = new FaultBook();
    const params = parseCallParams(q('fail=503&failTimes=2'));
    expect(book.next(params, '/u?fail=503&failTimes=2', 1)).toEqual({ kind: 'fail', status: 503 });
    expect(book.next(params, '/u?fail=503&failTimes=2', 1)).toEqual({ kind: 'fail', status: 503 });
    expect(book.next(params, '/u?fail=503&failTimes=2', 1)).toBeUndefined();
    // Another URL has its own count.
    expect(book.next(params, '/v?fail=503&failTimes=2', 1)).toEqual({ kind: 'fail', status: 503 });
  });

  it('fails every call when failTimes is absent', () => {
    const book = new FaultBook();
    const params = parseCallParams(q('fail=500'));
    for (let i = 0; i < 5; i++) expect(book.next(params, '/u', 1)).toEqual({ kind: 'fail', status: 500 });
  });

  it('groups calls by faultKey and page', () => {
    const book = new FaultBook();
    const params = parseCallParams(q('reset=1&failTimes=1&faultKey=job-1'));
    expect(book.next(params, '/a', 1)).toEqual({ kind: 'reset' });
    expect(book.next(params, '/b', 1)).toBeUndefined();
    expect(book.next(params, '/b', 2)).toEqual({ kind: 'reset' });
  });

  it('only hits failPage', () => {
    const book = new FaultBook();
    const params = parseCallParams(q('fail=502&failTimes=1&failPage=2'));
    expect(book.next(params, '/a', 1)).toBeUndefined();
    expect(book.next(params, '/a', 2)).toEqual({ kind: 'fail', status: 502 });
    expect(book.next(params, '/a', 2)).toBeUndefined();
    expect(book.next(params, '/a', 3)).toBeUndefined();
  });

  it('picks the most drastic fault and starts over after clear()', () => {
    const book = new FaultBook();
    expect(book.next(parseCallParams(q('hang=1&fail=500')), '/a', 1)).toEqual({ kind: 'hang' });
    expect(book.next(parseCallParams(q('badjson=1&throttle=1')), '/a', 1)).toEqual({
      kind: 'throttle',
      retryAfterMs: 1000,
      code: undefined,
    });
    expect(book.next(parseCallParams(q('badjson=1')), '/a', 1)).toEqual({ kind: 'badjson' });
    const once = parseCallParams(q('fail=500&failTimes=1'));
    expect(book.next(once, '/c', 1)).toBeDefined();
    expect(book.next(once, '/c', 1)).toBeUndefined();
    book.clear();
    expect(book.next(once, '/c', 1)).toBeDefined();
  });
});
