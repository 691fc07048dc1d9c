import { describe, expect, it } from 'vitest';
import { decodeCursor } from '../../src/emulator/cursor.ts';
import { nextPageUrl, pad, pageBody } from '../../src/emulator/pages.ts';
import type { PageInput } from '../../src/emulator/pages.ts';

function input(over: Partial<PageInput>): PageInput {
  return {
    pageStyle: 'generic',
    baseUrl: 'http://127.0.0.1:9/adjust/a1/report',
    query: new URLSearchParams('pages=3&rows=2'),
    platform: 'adjust',
    account: 'a1',
    report: 'report',
    page: 1,
    pages: 3,
    rows: 2,
    size: 0,
    ...over,
  };
}

describe('pages', () => {
  it('meta: data + paging.next carrying the whole query, access_token included', () => {
    const base = input({
      pageStyle: 'meta',
      baseUrl: 'http://127.0.0.1:9/meta/act_1/insights',
      query: new URLSearchParams('access_token=tok&pages=2'),
      platform: 'meta',
      account: 'act_1',
      report: 'insights',
      pages: 2,
    });
    const first = JSON.parse(pageBody(base)) as {
      data: Array<Record<string, string>>;
      paging: { next?: string; cursors: { after: string } };
    };
    expect(first.data).toHaveLength(2);
    expect(first.data[0]).toMatchObject({ account_id: '1', date_start: '2026-01-01' });
    const next = new URL(first.paging.next!);
    expect(next.origin + next.pathname).toBe('http://127.0.0.1:9/meta/act_1/insights');
    expect(next.searchParams.get('access_token')).toBe('tok');
    expect(next.searchParams.get('pages')).toBe('2');
    expect(decodeCursor(next.searchParams.get('after')!)).toBe(2);
    const last = JSON.parse(pageBody({ ...base, page: 2, query: next.searchParams })) as {
      paging: { next?: string };
    };
    expect(last.paging.next).toBeUndefined();
  });

  it('tiktok: code 0 and page_info, no next URL', () => {
    const base = input({ pageStyle: 'tiktok', platform: 'tiktok', account: 'adv', report: 'report' });
    const body = JSON.parse(pageBody({ ...base, page: 2 })) as {
      code: number;
      message: string;
      data: { list: unknown[]; page_info: Record<string, number> };
    };
    expect(body.code).toBe(0);
    expect(body.message).toBe('OK');
    expect(body.data.list).toHaveLength(2);
    expect(body.data.page_info).toEqual({ page: 2, page_size: 2, total_number: 6, total_page: 3 });
    expect(nextPageUrl(base)).toBeUndefined();
    const beyond = JSON.parse(pageBody({ ...base, page: 9 })) as { data: { list: unknown[] } };
    expect(beyond.data.list).toEqual([]);
  });

  it('generic: data + next, null on the last page', () => {
    const first = JSON.parse(pageBody(input({}))) as { data: unknown[]; next: string | null };
    expect(first.data).toHaveLength(2);
    const next = new URL(first.next!);
    expect(decodeCursor(next.searchParams.get('cursor')!)).toBe(2);
    const last = JSON.parse(pageBody(input({ page: 3 }))) as { next: string | null };
    expect(last.next).toBeNull();
  });

  it('gives the same bytes for the same page and different rows for other pages', () => {
    expect(pageBody(input({}))).toBe(pageBody(input({})));
    expect(pageBody(input({ pageStyle: 'tiktok' }))).toBe(pageBody(input({ pageStyle: 'tiktok' })));
    const one = JSON.parse(pageBody(input({ page: 1 }))) as { data: unknown[] };
    const two = JSON.parse(pageBody(input({ page: 2 }))) as { data: unknown[] };
    expect(one.data).not.toEqual(two.data);
  });

  it('pads to about the requested size and stays valid JSON', () => {
    const body = pageBody(input({ size: 10_000 }));
    expect(Buffer.byteLength(body)).toBe(10_000);
    expect(JSON.parse(body)).toHaveProperty('_pad');
    const small = pageBody(input({ size: 10 }));
    expect(small).toBe(pageBody(input({})));
    expect(pad('[1]', 100)).toBe('[1]');
  });
});
