import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { EmulatorConfigError, parseEmulatorConfig, styleOf } from './config.ts';
import { FaultBook } from './faults.ts';
import { LimitBook } from './limit-book.ts';
import type { LimitVerdict } from './limit-book.ts';
import { pageBody } from './pages.ts';
import { CallParamError, pageStyleOf, parseCallParams, requestedPage } from './params.ts';
import type { CallParams } from './params.ts';
import {
  badJsonResponse,
  badRequestResponse,
  failResponse,
  JSON_TYPE,
  notFoundResponse,
  throttleResponse,
  unauthorizedResponse,
  usageHeaders,
} from './styles.ts';
import type { EmuResponse, Usage } from './styles.ts';
import type { EmulatorConfig, EmulatorHandle, EmulatorStats, EmulatorStyle } from './types.ts';

export { defaultEmulatorConfig } from './config.ts';
export type { EmulatorConfig, EmulatorHandle, EmulatorStats } from './types.ts';

export interface StartEmulatorOptions {
  /** Interface to bind; loopback unless asked otherwise (the emulator has no auth of its own). */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
}

const CONTROL_PREFIX = '/__emulator/';
const MAX_CONTROL_BODY = 1024 * 1024;
const RECENT_URLS = 1000;
const MAX_HEADER_NAMES = 1000;
const HOST_HEADER = /^[A-Za-z0-9.\-[\]:]{1,300}$/;

interface Counters {
  calls: number;
  ok: number;
  throttled: number;
  faults: number;
  unauthorized: number;
  notFound: number;
  badRequests: number;
  inFlight: number;
  maxInFlight: number;
}

type Outcome = EmuResponse | 'hang' | 'reset';

function zeroCounters(inFlight: number): Counters {
  return {
    calls: 0,
    ok: 0,
    throttled: 0,
    faults: 0,
    unauthorized: 0,
    notFound: 0,
    badRequests: 0,
    inFlight,
    maxInFlight: inFlight,
  };
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'cache-control': 'no-store' });
  res.end(text);
}

/** The state behind one emulator server; all of it lives in this process's memory. */
class Emulator {
  private cfg: EmulatorConfig;
  private readonly book: LimitBook;
  private readonly faults = new FaultBook();
  private counters = zeroCounters(0);
  private readonly byPath = new Map<string, number>();
  private readonly pageCalls = new Map<string, number>();
  private readonly headerNames = new Set<string>();
  private recentUrls: string[] = [];
  private recentNext = 0;
  private since = new Date();
  private readonly timers = new Set<NodeJS.Timeout>();
  /**
   * The emulator's own event-loop delay: an arrival is timed when its request is parsed, so a
   * stalled loop (a starved process on a busy machine) squeezes arrivals together. Its maximum
   * bounds the emulator's measuring error, to tell that from a client's.
   */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 5 });
  private closed = false;
  /** `127.0.0.1:PORT`, for next URLs when a request has no usable Host header. */
  fallbackHost = '127.0.0.1';

  constructor(config: EmulatorConfig) {
    this.cfg = config;
    this.book = new LimitBook(config);
    this.loopDelay.enable();
  }

  get config(): EmulatorConfig {
    return this.cfg;
  }

  setConfig(input: unknown): void {
    const config = parseEmulatorConfig(input);
    this.cfg = config;
    this.book.setConfig(config);
  }

  reset(): void {
    this.loopDelay.reset();
    this.counters = zeroCounters(this.counters.inFlight);
    this.book.clear();
    this.faults.clear();
    this.byPath.clear();
    this.pageCalls.clear();
    this.headerNames.clear();
    this.recentUrls = [];
    this.recentNext = 0;
    this.since = new Date();
  }

  stats(brief = false): EmulatorStats {
    const c = this.counters;
    const recent =
      this.recentUrls.length < RECENT_URLS
        ? [...this.recentUrls]
        : [...this.recentUrls.slice(this.recentNext), ...this.recentUrls.slice(0, this.recentNext)];
    return {
      calls: c.calls,
      ok: c.ok,
      throttled: c.throttled,
      violations: this.book.violations,
      quotaExceeded: this.book.quotaExceeded,
      faults: c.faults,
      unauthorized: c.unauthorized,
      notFound: c.notFound,
      badRequests: c.badRequests,
      inFlight: c.inFlight,
      maxInFlight: c.maxInFlight,
      byKey: brief ? {} : this.book.byKey(),
      byRule: this.book.byRule(),
      byPath: brief ? {} : Object.fromEntries(this.byPath),
      pageCalls: brief ? {} : Object.fromEntries(this.pageCalls),
      headerNames: [...this.headerNames].sort(),
      recentUrls: brief ? [] : recent,
      since: this.since.toISOString(),
      loopDelayMaxMs: Math.round(this.loopDelay.max / 1e5) / 10,
    };
  }

  /** Stops pending answers; the server destroys the sockets. */
  shutdown(): void {
    this.loopDelay.disable();
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Taken first, before any parsing: this is the arrival time the limits are judged on.
    const now = performance.now();
    const url = req.url ?? '/';
    if (url.startsWith(CONTROL_PREFIX)) {
      this.control(req, res, url);
      return;
    }
    const wallMs = Date.now();
    const c = this.counters;
    c.calls++;
    if (++c.inFlight > c.maxInFlight) c.maxInFlight = c.inFlight;
    // A reset replaces the counters but carries inFlight over, so settle on the live object.
    res.once('close', () => this.counters.inFlight--);
    // Bodies are not used; reading them keeps the keep-alive connection usable.
    req.resume();
    this.remember(req, url);

    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const parts = path.split('/');
    const platform = parts.length === 4 && parts[1] ? safeDecode(parts[1]) : undefined;
    const account = parts.length === 4 && parts[2] ? safeDecode(parts[2]) : undefined;
    const report = parts.length === 4 && parts[3] ? safeDecode(parts[3]) : undefined;
    if (platform === undefined || account === undefined || report === undefined) {
      c.notFound++;
      this.write(res, notFoundResponse(path.slice(0, 200)));
      return;
    }
    bump(this.byPath, path);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const verdict = this.book.arrive(
      { platform, account, report, ip: req.socket.remoteAddress ?? '', query },
      now,
      wallMs,
    );
    // In flight for the concurrency rules until 'close': emitted once the whole answer has gone
    // to the socket (a tick after the last write, before any further request is read, so a client
    // that waits for its answer never overlaps itself), or when the connection closes first
    // (hang, reset, a client that gives up). A large body still draining counts as in flight.
    const { flight } = verdict;
    res.once('close', () => this.book.depart(flight));

    const style = styleOf(this.cfg, platform);
    let params: CallParams | undefined;
    let page = 1;
    let paramError: string | undefined;
    try {
      params = parseCallParams(query);
      page = requestedPage(pageStyleOf(style), query);
      bump(this.pageCalls, `${path}#${page}`);
    } catch (error) {
      if (!(error instanceof CallParamError)) throw error;
      paramError = error.message;
    }

    const throttled = verdict.quotaExceeded || verdict.broken.length > 0;
    let outcome: Outcome;
    if (verdict.quotaExceeded) {
      c.throttled++;
      // A calendar-day rule's scope and code when one broke, else the account's daily quota's.
      const day = verdict.broken.find((hit) => hit.rule.reset === 'utc-day')?.rule;
      outcome = throttleResponse(style, {
        kind: 'daily',
        retryAfterMs: verdict.quotaResetMs,
        scope: day?.scope ?? 'account',
        code: day?.code,
      });
    } else if (verdict.broken.length > 0) {
      c.throttled++;
      const first = verdict.broken[0]!.rule;
      outcome = throttleResponse(style, {
        kind: 'rate',
        retryAfterMs: verdict.retryAfterMs,
        scope: first.scope,
        code: first.code,
      });
    } else if (!this.authorised(req, query)) {
      c.unauthorized++;
      outcome = unauthorizedResponse(style);
    } else if (params === undefined || paramError !== undefined) {
      c.badRequests++;
      outcome = badRequestResponse(style, paramError ?? 'bad request');
    } else {
      outcome = this.serve(style, params, req, url, path, query, { platform, account, report, page });
    }

    if (outcome !== 'hang' && outcome !== 'reset') {
      Object.assign(outcome.headers, usageHeaders(style, this.usage(account, verdict, throttled)));
    }
    if (outcome === 'hang') return; // Answered never; close() destroys the socket.
    const platformLatency = Object.hasOwn(this.cfg.platforms, platform)
      ? this.cfg.platforms[platform]?.latencyMs
      : undefined;
    let delay = params?.latencyMs ?? platformLatency ?? this.cfg.latencyMs ?? 0;
    if (params !== undefined && params.jitterMs > 0) delay += Math.random() * params.jitterMs;
    this.deliver(res, outcome, delay);
  };

  private serve(
    style: EmulatorStyle,
    params: CallParams,
    req: IncomingMessage,
    url: string,
    path: string,
    query: URLSearchParams,
    call: { platform: string; account: string; report: string; page: number },
  ): Outcome {
    const c = this.counters;
    const fault = this.faults.next(params, url, call.page);
    if (fault !== undefined) {
      c.faults++;
      switch (fault.kind) {
        case 'hang':
        case 'reset':
          return fault.kind;
        case 'fail':
          return failResponse(style, fault.status);
        case 'badjson':
          return badJsonResponse();
        case 'throttle':
          c.throttled++;
          return throttleResponse(style, {
            kind: 'rate',
            retryAfterMs: fault.retryAfterMs,
            scope: 'account',
            code: fault.code,
          });
      }
    }
    const host = req.headers.host;
    const baseUrl = `http://${host !== undefined && HOST_HEADER.test(host) ? host : this.fallbackHost}${path}`;
    c.ok++;
    return {
      status: 200,
      headers: { 'content-type': JSON_TYPE },
      body: pageBody({
        pageStyle: pageStyleOf(style),
        baseUrl,
        query,
        ...call,
        pages: params.pages,
        rows: params.rows,
        size: params.size,
      }),
    };
  }

  private usage(account: string, verdict: LimitVerdict, throttled: boolean): Usage {
    const s = verdict.strictest;
    return {
      account,
      usedPct: verdict.quotaExceeded ? 100 : verdict.usedPct,
      appUsedPct: verdict.appUsedPct,
      retryAfterMs: !throttled ? 0 : verdict.quotaExceeded ? verdict.quotaResetMs : verdict.retryAfterMs,
      strictest:
        s === undefined
          ? undefined
          : {
              limit: s.limit,
              remaining: Math.max(0, s.limit - s.result.count),
              resetInMs: s.result.resetInMs,
            },
    };
  }

  private authorised(req: IncomingMessage, query: URLSearchParams): boolean {
    const token = this.cfg.requireBearer;
    if (token === undefined) return true;
    const header = req.headers.authorization;
    if (header !== undefined && /^bearer /i.test(header) && header.slice(7).trim() === token) return true;
    return query.get('access_token') === token;
  }

  private remember(req: IncomingMessage, url: string): void {
    if (this.recentUrls.length < RECENT_URLS) {
      this.recentUrls.push(url);
    } else {
      this.recentUrls[this.recentNext] = url;
      this.recentNext = (this.recentNext + 1) % RECENT_URLS;
    }
    const raw = req.rawHeaders;
    if (this.headerNames.size >= MAX_HEADER_NAMES) return;
    for (let i = 0; i < raw.length; i += 2) this.headerNames.add(raw[i]!.toLowerCase());
  }

  private deliver(res: ServerResponse, outcome: EmuResponse | 'reset', delayMs: number): void {
    if (delayMs <= 0) {
      this.write(res, outcome);
      return;
    }
    // A timer per call, not a blocking wait: thousands of calls can be pending at once.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.write(res, outcome);
    }, delayMs);
    this.timers.add(timer);
  }

  private write(res: ServerResponse, outcome: EmuResponse | 'reset'): void {
    if (this.closed || res.destroyed || res.writableEnded) return;
    if (outcome === 'reset') {
      res.socket?.destroy();
      return;
    }
    res.writeHead(outcome.status, outcome.headers);
    res.end(outcome.body);
  }

  private control(req: IncomingMessage, res: ServerResponse, url: string): void {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const method = req.method ?? 'GET';
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /__emulator/health':
        req.resume();
        sendJson(res, 200, { ok: true });
        return;
      case 'GET /__emulator/stats': {
        req.resume();
        const brief = query.get('brief') === '1' || query.get('brief') === 'true';
        sendJson(res, 200, this.stats(brief));
        return;
      }
      case 'POST /__emulator/reset':
        req.resume();
        this.reset();
        sendJson(res, 200, { ok: true });
        return;
      case 'GET /__emulator/config':
        req.resume();
        sendJson(res, 200, this.cfg);
        return;
      case 'PUT /__emulator/config':
        readBody(req, MAX_CONTROL_BODY).then(
          (body) => {
            let input: unknown;
            try {
              input = JSON.parse(body);
            } catch {
              sendJson(res, 400, { error: 'bad_config', message: 'body is not valid JSON' });
              return;
            }
            try {
              this.setConfig(input);
            } catch (error) {
              const status = error instanceof EmulatorConfigError ? 400 : 500;
              sendJson(res, status, { error: 'bad_config', message: (error as Error).message });
              return;
            }
            sendJson(res, 200, this.cfg);
          },
          (error: unknown) => {
            if (error instanceof BodyTooLarge) {
              res.setHeader('connection', 'close');
              sendJson(res, 413, { error: 'too_large', message: `body over ${MAX_CONTROL_BODY} bytes` });
            } else {
              res.destroy();
            }
          },
        );
        return;
      default:
        req.resume();
        sendJson(res, 404, {
          error: 'not_found',
          message: 'control endpoints: GET stats, POST reset, GET/PUT config, GET health',
        });
    }
  }
}

class BodyTooLarge extends Error {}

/** Reads a small body; stops reading (and rejects) past `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the emulator. The config is validated (EmulatorConfigError on bad input) and copied.
 * Keep-alive stays open long and without a request cap because Prism pools its connections.
 */
export async function startEmulator(
  config: EmulatorConfig,
  opts: StartEmulatorOptions = {},
): Promise<EmulatorHandle> {
  const emulator = new Emulator(parseEmulatorConfig(config));
  const server: Server = createServer(
    { keepAliveTimeout: 65_000, headersTimeout: 66_000 },
    emulator.onRequest,
  );
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.maxRequestsPerSocket = 0;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(host)}:${port}`;
  emulator.fallbackHost = `${urlHost(host)}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: () => emulator.stats(),
    reset: () => emulator.reset(),
    setConfig: (next) => emulator.setConfig(next),
    config: () => structuredClone(emulator.config),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        emulator.shutdown();
        server.close(() => resolve());
        // Idle keep-alive sockets and hanging calls would otherwise hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
