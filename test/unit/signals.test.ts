import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { productionConfig } from '../../src/config/platforms.ts';
import { classifyResponse, retryAfter } from '../../src/limits/signals.ts';
import { nextPage, pageUrl } from '../../src/limits/pagination.ts';
import { redactUrl } from '../../src/messages/url-policy.ts';

const config = parseConfig(productionConfig());
const view = (status: number, json: unknown, headers: Record<string, string> = {}) => ({
  status,
  headers,
  json,
  bodyText: () => JSON.stringify(json),
});
const now = Date.UTC(2026, 10, 24, 12);

describe('classifyResponse', () => {
  it('reads Meta 400 + error.code as a throttle of the right scope', () => {
    const signals = config.sources.meta!.signals;
    expect(classifyResponse(view(400, { error: { code: 17 } }), signals, now)).toMatchObject({
      kind: 'throttled',
      scope: '{source}/{account}',
    });
    expect(classifyResponse(view(400, { error: { code: 80004 } }), signals, now)).toMatchObject({
      kind: 'throttled',
      scope: '{source}/{account}',
    });
    expect(classifyResponse(view(400, { error: { code: 4 } }), signals, now)).toMatchObject({
      kind: 'throttled',
      scope: '{source}',
    });
    expect(classifyResponse(view(400, { error: { code: 100 } }), signals, now)).toMatchObject({
      kind: 'reject',
    });
  });

  it('reads TikTok 200 + code 40100 as a throttle, and 200 + code 0 as data', () => {
    const signals = config.sources.tiktok!.signals;
    expect(classifyResponse(view(200, { code: 40100 }), signals, now)).toMatchObject({
      kind: 'throttled',
      until: now + 1000,
    });
    expect(classifyResponse(view(200, { code: 0, data: {} }), signals, now)).toEqual({ kind: 'ok' });
  });

  it('slows the scope down on a slow signal, for its duration or Retry-After, and pauses on the others', () => {
    const kakao = parseConfig({
      sources: {
        kakao: {
          allowHosts: ['x.example'],
          signals: [
            {
              name: 'kakao-slow',
              match: { body: { path: 'code', in: [-10] } },
              scope: '{source}/{account}',
              action: { type: 'slow', interval: '3s', for: '1m' },
            },
            {
              name: 'kakao-slower',
              match: { body: { path: 'code', in: [-11] } },
              action: { type: 'slow', factor: 4 },
            },
          ],
          apis: { report: {} },
        },
      },
    }).sources.kakao!.signals;
    expect(classifyResponse(view(429, { code: -10 }), kakao, now)).toMatchObject({
      kind: 'throttled',
      signal: 'kakao-slow',
      until: now + 60_000,
      slow: { intervalMs: 3_000, factor: 2 },
    });
    expect(classifyResponse(view(429, { code: -11 }, { 'retry-after': '20' }), kakao, now)).toMatchObject({
      until: now + 20_000,
      slow: { intervalMs: undefined, factor: 4 },
    });
    const meta = classifyResponse(view(400, { error: { code: 17 } }), config.sources.meta!.signals, now);
    expect(meta).toMatchObject({ kind: 'throttled' });
    expect(meta).not.toHaveProperty('slow');
  });

  it('honours 429 with Retry-After in seconds or as a date', () => {
    expect(classifyResponse(view(429, {}, { 'retry-after': '7' }), [], now)).toMatchObject({
      kind: 'throttled',
      until: now + 7000,
    });
    const date = new Date(now + 30_000).toUTCString();
    expect(retryAfter({ 'retry-after': date }, now)).toBe(now + 30_000);
    expect(retryAfter({ 'ratelimit-reset': '3' }, now)).toBe(now + 3000);
  });

  it('retries 5xx and rejects other 4xx and redirects', () => {
    expect(classifyResponse(view(503, {}), [], now)).toMatchObject({ kind: 'retry' });
    expect(classifyResponse(view(404, { error: 'x' }), [], now)).toMatchObject({ kind: 'reject' });
    expect(classifyResponse(view(302, {}), [], now)).toMatchObject({ kind: 'reject', reason: /redirect/ });
    const leaky = classifyResponse(
      { ...view(400, {}), bodyText: () => 'bad call ?access_token=SECRET123&x=1' },
      [],
      now,
    );
    expect(JSON.stringify(leaky)).not.toContain('SECRET123');
  });
});

describe('pagination', () => {
  const first = { url: 'https://graph.facebook.com/act_1/insights', query: { date: 'd' } };
  it('follows Meta next URLs, cursors and page numbers', () => {
    expect(
      nextPage({ paging: { next: 'https://graph.facebook.com/n?after=x' } }, first, { next: 'paging.next' }),
    ).toEqual({
      done: false,
      request: { url: 'https://graph.facebook.com/n?after=x', query: {} },
    });
    expect(nextPage({ paging: {} }, first, { next: 'paging.next' })).toEqual({ done: true });
    expect(nextPage({ c: 'abc' }, first, { cursor: 'c', param: 'cursor' })).toMatchObject({
      done: false,
      request: { query: { date: 'd', cursor: 'abc' } },
    });
    const tiktok = { page: 'data.page_info.page', totalPages: 'data.page_info.total_page', param: 'page' };
    expect(nextPage({ data: { page_info: { page: 1, total_page: 3 } } }, first, tiktok)).toMatchObject({
      done: false,
      request: { query: { page: '2' } },
    });
    expect(nextPage({ data: { page_info: { page: 3, total_page: 3 } } }, first, tiktok)).toEqual({
      done: true,
    });
    expect(nextPage(undefined, first, tiktok)).toHaveProperty('error');
    expect(pageUrl(first)).toBe('https://graph.facebook.com/act_1/insights?date=d');
  });

  it('strips credentials from URLs before they are logged or stored', () => {
    const redacted = redactUrl('https://u:p@graph.facebook.com/n?after=x&access_token=EAAB123&fields=a');
    expect(redacted).not.toContain('EAAB123');
    expect(redacted).not.toContain('u:p@');
    expect(redacted).toContain('after=x');
  });
});
