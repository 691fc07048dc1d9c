import type { PrismConfigInput } from './schema.ts';

type SourcesInput = PrismConfigInput['sources'];
type SourceInput = SourcesInput[string];

/**
 * How each platform signals "too many calls" (DESIGN.md "Limits"). Most do not answer 429:
 * Meta answers 400 with error.code, TikTok 200 with code 40100.
 */
export const PLATFORM_SIGNALS: Record<string, SourceInput['signals']> = {
  meta: [
    // Code 4 is the app's limit: every account of the app stops.
    {
      name: 'meta-app-limit',
      match: { status: 400, body: { path: 'error.code', in: [4] } },
      scope: '{source}',
      action: { type: 'pause', for: '60s' },
    },
    {
      name: 'meta-account-limit',
      match: { status: 400, body: { path: 'error.code', in: [17, 32, 613, [80000, 80014]] } },
      scope: '{source}/{account}',
      action: { type: 'pause', for: '60s' },
    },
  ],
  tiktok: [
    {
      name: 'tiktok-qps',
      match: { status: 200, body: { path: 'code', in: [40100] } },
      scope: '{source}/{account}',
      action: { type: 'pause', for: '1s' },
    },
  ],
  google: [
    {
      name: 'google-resource-exhausted',
      match: { status: 429, body: { path: 'error.status', in: ['RESOURCE_EXHAUSTED'] } },
      scope: '{source}/{account}',
      // Google says how long in the body: error.details[].errors[].details.quotaErrorDetails.retryDelay.
      action: {
        type: 'pause',
        for: '5s',
        delayPath: 'error.details.0.errors.0.details.quotaErrorDetails.retryDelay',
      },
    },
  ],
  naver: [
    {
      name: 'naver-1016',
      match: { body: { path: 'code', in: [1016] } },
      scope: '{source}/{account}',
      action: { type: 'pause' },
    },
  ],
  kakao: [
    {
      name: 'kakao-minus-10',
      match: { body: { path: 'code', in: [-10] } },
      scope: '{source}/{account}',
      action: { type: 'pause' },
    },
  ],
  appsflyer: [],
  adjust: [],
};

/**
 * The embedded default for `prism node`: the seven platforms with their public hosts and
 * published limits. Tokens come from the environment variables named here.
 */
export function productionSources(): SourcesInput {
  return {
    meta: {
      allowHosts: ['graph.facebook.com'],
      auth: { 'meta-default': { type: 'bearer', tokenEnv: 'META_TOKEN' } },
      limits: [
        { key: '{source}/{account}', limit: 1, per: '5s' },
        { key: '{source}/{account}', limit: 60, per: '1h' },
        { key: '{source}', limit: 200, per: '1h' },
      ],
      signals: PLATFORM_SIGNALS.meta,
      usage: { kind: 'meta' },
      apis: { insights: { concurrency: 1, paginate: { next: 'paging.next' } } },
    },
    google: {
      allowHosts: ['googleads.googleapis.com'],
      auth: { 'google-default': { type: 'bearer', tokenEnv: 'GOOGLE_ADS_TOKEN' } },
      limits: [{ key: '{source}/{account}', limit: 1, per: '1s' }],
      signals: PLATFORM_SIGNALS.google,
      apis: { search: { concurrency: 1, paginate: { next: 'nextPageToken' } } },
    },
    tiktok: {
      allowHosts: ['business-api.tiktok.com'],
      auth: { 'tiktok-default': { type: 'header', header: 'Access-Token', tokenEnv: 'TIKTOK_TOKEN' } },
      limits: [
        { key: '{source}/{account}', limit: 10, per: '1s' },
        { key: '{source}/{account}', limit: 600, per: '1m' },
        { key: '{source}/{account}', limit: 100000, per: '1d', reset: 'utc-day' },
      ],
      signals: PLATFORM_SIGNALS.tiktok,
      apis: {
        report: {
          concurrency: 1,
          paginate: { page: 'data.page_info.page', totalPages: 'data.page_info.total_page', param: 'page' },
        },
      },
    },
    naver: {
      allowHosts: ['api.searchad.naver.com'],
      auth: { 'naver-default': { type: 'header', header: 'X-API-KEY', tokenEnv: 'NAVER_API_KEY' } },
      limits: [{ key: '{source}/{account}', limit: 10, per: '1s' }],
      signals: PLATFORM_SIGNALS.naver,
      apis: { stats: { concurrency: 1 } },
    },
    kakao: {
      allowHosts: ['apis.moment.kakao.com'],
      auth: { 'kakao-default': { type: 'bearer', tokenEnv: 'KAKAO_TOKEN' } },
      limits: [{ key: '{source}/{account}', limit: 5, per: '1s' }],
      signals: PLATFORM_SIGNALS.kakao,
      apis: { report: { concurrency: 1 } },
    },
    appsflyer: {
      allowHosts: ['hq1.appsflyer.com'],
      auth: { 'appsflyer-default': { type: 'bearer', tokenEnv: 'APPSFLYER_TOKEN' } },
      limits: [
        { key: '{source}/{meta.app_id}/{api}', limit: 1, per: '1m' },
        { key: '{source}/{meta.app_id}', limit: 24, per: '1d', reset: 'utc-day' },
        { key: '{source}/{account}', limit: 120, per: '1d', reset: 'utc-day' },
      ],
      apis: { 'installs-report': { concurrency: 1 }, 'in-app-events-report': { concurrency: 1 } },
    },
    adjust: {
      allowHosts: ['automate.adjust.com', 'dash.adjust.com'],
      auth: { 'adjust-default': { type: 'bearer', tokenEnv: 'ADJUST_TOKEN' } },
      // Adjust counts calls per caller IP: one node is one egress IP.
      limits: [{ key: '{source}/{node}', limit: 50, per: '1s' }],
      apis: { report: { concurrency: 4 } },
    },
  };
}

export function productionConfig(): PrismConfigInput {
  return { sources: productionSources() };
}

export interface DemoLimits {
  /** Calls per account per window, the same at the emulator and in Prism. */
  perAccount: number;
  perMs: number;
}

/** The platforms of the emulator, as sources of a Prism config that point at it. */
export function emulatorSources(emulatorHostPort: string, limits: DemoLimits | undefined): SourcesInput {
  const sources: SourcesInput = {};
  const apis: Record<string, SourceInput['apis']> = {
    meta: { insights: { paginate: { next: 'paging.next' } } },
    tiktok: {
      report: {
        paginate: { page: 'data.page_info.page', totalPages: 'data.page_info.total_page', param: 'page' },
      },
    },
  };
  for (const platform of ['meta', 'google', 'tiktok', 'naver', 'kakao', 'appsflyer', 'adjust']) {
    sources[platform] = {
      allowHosts: [emulatorHostPort],
      limits:
        limits === undefined
          ? []
          : [{ key: '{source}/{account}', limit: limits.perAccount, per: limits.perMs }],
      signals: PLATFORM_SIGNALS[platform] ?? [],
      ...(platform === 'meta' ? { usage: { kind: 'meta' as const } } : {}),
      apis: apis[platform] ?? { report: { paginate: { next: 'next' } } },
    };
  }
  return sources;
}
