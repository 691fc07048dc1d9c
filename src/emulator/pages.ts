import { encodeCursor } from './cursor.ts';
import { pageParamOf } from './params.ts';
import type { PageStyle } from './params.ts';

export interface PageInput {
  pageStyle: PageStyle;
  /** Absolute URL of the call without its query, e.g. `http://127.0.0.1:4010/meta/act_1/insights`. */
  baseUrl: string;
  /** The call's query; copied (with the page parameter replaced) into the next URL. */
  query: URLSearchParams;
  platform: string;
  account: string;
  report: string;
  /** From 1. */
  page: number;
  pages: number;
  rows: number;
  /** Pad the body to about this many bytes (0: none). */
  size: number;
}

/**
 * The next page's absolute URL, or undefined on the last page and for TikTok (which pages by
 * number). The whole query is carried over, `access_token` included, as Meta does: that is
 * exactly what a client must not log or store.
 */
export function nextPageUrl(input: PageInput): string | undefined {
  if (input.pageStyle === 'tiktok' || input.page >= input.pages) return undefined;
  const query = new URLSearchParams(input.query);
  query.set(pageParamOf(input.pageStyle), encodeCursor(input.page + 1));
  return `${input.baseUrl}?${query.toString()}`;
}

/** FNV-1a: rows must be the same on every call so stored pages are comparable across retries. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function mix(seed: number, n: number): number {
  let x = Math.imul(seed ^ n, 0x9e3779b1);
  x = Math.imul(x ^ (x >>> 15), 0x85ebca6b);
  return (x ^ (x >>> 13)) >>> 0;
}

function dateOf(query: URLSearchParams): string {
  const date = query.get('date') ?? query.get('since');
  return date !== null && /^\d{4}-\d{2}-\d{2}$/.test(date) ? date : '2026-01-01';
}

function rowsOf(input: PageInput): unknown[] {
  const seed = hash(`${input.platform}/${input.account}/${input.report}`);
  const date = dateOf(input.query);
  const out: unknown[] = [];
  // Past the last page (TikTok lets a client ask for any page number) there is nothing.
  const count = input.page <= input.pages ? input.rows : 0;
  for (let i = 0; i < count; i++) {
    const n = (input.page - 1) * input.rows + i;
    const r = mix(seed, n);
    const impressions = 100 + (r % 100_000);
    const clicks = Math.floor(impressions / (20 + (r % 80)));
    const cost = ((r % 1_000_000) / 100).toFixed(2);
    const campaign = String(1_000_000 + (mix(seed, n >>> 3) % 9_000_000));
    switch (input.pageStyle) {
      case 'meta':
        out.push({
          account_id: input.account.replace(/^act_/, ''),
          campaign_id: campaign,
          date_start: date,
          date_stop: date,
          impressions: String(impressions),
          clicks: String(clicks),
          spend: cost,
        });
        break;
      case 'tiktok':
        out.push({
          dimensions: {
            advertiser_id: input.account,
            campaign_id: campaign,
            stat_time_day: `${date} 00:00:00`,
          },
          metrics: { impressions: String(impressions), clicks: String(clicks), spend: cost },
        });
        break;
      case 'generic':
        out.push({
          account: input.account,
          report: input.report,
          row: n,
          date,
          campaign_id: campaign,
          impressions,
          clicks,
          cost: Number(cost),
        });
        break;
    }
  }
  return out;
}

/** One page's JSON body in the style's shape; the same input always gives the same bytes. */
export function pageBody(input: PageInput): string {
  const data = rowsOf(input);
  let body: string;
  switch (input.pageStyle) {
    case 'meta': {
      const next = nextPageUrl(input);
      const cursors = {
        before: encodeCursor(input.page),
        after: encodeCursor(Math.min(input.page + 1, Math.max(input.pages, input.page))),
      };
      body = JSON.stringify({ data, paging: next === undefined ? { cursors } : { cursors, next } });
      break;
    }
    case 'tiktok':
      body = JSON.stringify({
        code: 0,
        message: 'OK',
        request_id: `${hash(`${input.platform}/${input.account}/${input.report}/${input.page}`).toString(16)}`,
        data: {
          list: data,
          page_info: {
            page: input.page,
            page_size: input.rows,
            total_number: input.rows * input.pages,
            total_page: input.pages,
          },
        },
      });
      break;
    case 'generic':
      body = JSON.stringify({ data, next: nextPageUrl(input) ?? null });
      break;
  }
  return pad(body, input.size);
}

/** Grows a JSON object body to about `size` bytes with a trailing `_pad` string field. */
export function pad(body: string, size: number): string {
  const overhead = ',"_pad":""'.length;
  const missing = size - Buffer.byteLength(body) - overhead;
  if (missing <= 0 || !body.endsWith('}')) return body;
  return `${body.slice(0, -1)},"_pad":"${'x'.repeat(missing)}"}`;
}
