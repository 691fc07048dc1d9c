import { subscribe } from 'node:diagnostics_channel';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createServer, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { isBlockedAddress } from './blocked-addresses.ts';
import type { BodyBudget, BodyLease } from './body-budget.ts';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /**
   * The caller is done with `body` (stored, or dropped): its bytes leave the node's body budget.
   * Every response must be released once, or the node's readers wait for room that never comes.
   */
  release(): void;
}

/** `late`: stopped before it was written, because it could not leave by `SendOptions.leaveBy`. */
export type HttpFailureKind = 'timeout' | 'connection' | 'body-too-large' | 'blocked-address' | 'late';

/** A call that got no complete answer. `kind` decides whether it is worth another attempt. */
export class HttpFailure extends Error {
  override name = 'HttpFailure';
  readonly kind: HttpFailureKind;
  constructor(kind: HttpFailureKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

export interface SendOptions {
  timeoutMs: number;
  maxBodyBytes: number;
  /** Called when the request is written to the socket, with the time (the ledger counts the slot from it). */
  onSend?: (at: number) => void;
  /**
   * The latest time (epoch ms) the request may be written: one that is not written by then (held
   * up in the event loop, or waiting for a connection) is stopped before it is, and fails `late`.
   * The ledger counts its slot until then only.
   */
  leaveBy?: number;
}

/** The one thing collectors need from HTTP; undici behind it, swappable in tests. */
export interface HttpClient {
  send(req: HttpRequest, options: SendOptions): Promise<HttpResponse>;
  readonly inFlight: number;
  close(): Promise<void>;
}

/** Refuses, at connect time, host names that resolve to link-local or metadata addresses. */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 0);
    const list = addresses as LookupAddress[];
    const blocked = list.find((a) => isBlockedAddress(a.address));
    if (blocked !== undefined) {
      return callback(
        new HttpFailure(
          'blocked-address',
          `${hostname} resolves to ${blocked.address}, which jobs may not reach`,
        ),
        '',
        0,
      );
    }
    if ((options as { all?: boolean }).all === true)
      return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    const first = list[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
};

/**
 * When a request really leaves: undici publishes `undici:client:sendHeaders` right before it
 * writes the request to the socket, after any queueing for a connection, connection set-up, or
 * the first request's parser compilation (tens of ms on a busy machine, measured in the
 * three-node test). `undici:request:create` runs synchronously inside `request()`, which is how a
 * request object is tied back to the call that made it.
 */
interface Leaving {
  onSend: ((at: number) => void) | undefined;
  leaveBy: number;
  stop: AbortController | undefined;
}
let creatingCall: Leaving | undefined;
const leavingByRequest = new WeakMap<object, Leaving>();
subscribe('undici:request:create', (message) => {
  if (creatingCall === undefined) return;
  leavingByRequest.set((message as { request: object }).request, creatingCall);
  creatingCall = undefined;
});
subscribe('undici:client:sendHeaders', (message) => {
  const request = (message as { request: object }).request;
  const leaving = leavingByRequest.get(request);
  if (leaving === undefined) return;
  leavingByRequest.delete(request);
  const at = performance.timeOrigin + performance.now();
  if (at > leaving.leaveBy) {
    // Aborting here destroys the socket before undici writes to it (synchronously, next): the
    // platform never sees this call.
    leaving.stop?.abort(
      new HttpFailure(
        'late',
        `not sent: ready ${Math.round(at - leaving.leaveBy)}ms after the latest time its slot allowed`,
      ),
    );
    return;
  }
  leaving.onSend?.(at);
});

/**
 * Why calls cannot leave from `address`, if they cannot: this host lacks it (every call would fail
 * with EADDRNOTAVAIL, each job learning it only after its attempts). Binding a socket tells.
 */
export async function localAddressProblem(address: string): Promise<string | undefined> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port: 0 }, resolve);
    });
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return `${address} is not an address of this host (${code})`;
  } finally {
    server.close();
  }
}

export class UndiciHttpClient implements HttpClient {
  private readonly agent: Agent;
  inFlight = 0;

  private readonly bodies: BodyBudget | undefined;

  /**
   * `localAddress`: the address calls leave from (a host with several egress IPs). `bodies`: the
   * node's budget for response bytes held at once (none: each call is bounded by maxBodyBytes only).
   */
  constructor(options: { connectTimeoutMs?: number; localAddress?: string; bodies?: BodyBudget } = {}) {
    this.bodies = options.bodies;
    this.agent = new Agent({
      // Keep connections to each API host open and reuse them: TLS setup costs more than the call.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      connections: null,
      pipelining: 1,
      connect: { timeout: options.connectTimeoutMs ?? 10_000, lookup: guardedLookup },
      // A client option, not a connect one: undici's connector sets it from the client's.
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
  }

  async send(req: HttpRequest, options: SendOptions): Promise<HttpResponse> {
    this.inFlight++;
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const stop = options.leaveBy !== undefined ? new AbortController() : undefined;
    const signal = stop === undefined ? timeout : AbortSignal.any([timeout, stop.signal]);
    let lease: BodyLease | undefined;
    try {
      if (options.onSend !== undefined || stop !== undefined)
        creatingCall = { onSend: options.onSend, leaveBy: options.leaveBy ?? Infinity, stop };
      const pending = request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        dispatcher: this.agent,
        signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        maxRedirections: 0,
      } as Parameters<typeof request>[1]);
      creatingCall = undefined;
      const response = await pending;
      lease = this.bodies?.lease();
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > options.maxBodyBytes) {
          response.body.destroy();
          throw new HttpFailure('body-too-large', `response body exceeds ${options.maxBodyBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
        // The node holds too many bodies: read no more (the socket's flow control holds the rest
        // at the platform) until some are stored. The call's timeout still runs meanwhile.
        const wait = lease?.grow((chunk as Buffer).length);
        if (wait !== undefined) await unlessAborted(wait, signal);
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined)
          headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      const held = lease;
      return {
        status: response.statusCode,
        headers,
        body: Buffer.concat(chunks, size),
        release: held === undefined ? noRelease : () => held.release(),
      };
    } catch (error) {
      lease?.release();
      throw toFailure(stop?.signal.reason ?? error, timeout, options.timeoutMs);
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

const noRelease = (): void => undefined;

/** Waits for `wait`, or throws the signal's reason once it aborts (the call timed out meanwhile). */
function unlessAborted(wait: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    void wait.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

function toFailure(error: unknown, signal: AbortSignal, timeoutMs: number): Error {
  if (error instanceof HttpFailure) return error;
  const err = error as { name?: string; code?: string; message?: string; cause?: unknown };
  if (err.cause instanceof HttpFailure) return err.cause;
  if (signal.aborted || err.name === 'TimeoutError' || /Timeout/.test(err.code ?? '')) {
    return new HttpFailure('timeout', `no complete answer within ${timeoutMs}ms`);
  }
  return new HttpFailure('connection', `${err.code ?? err.name ?? 'error'}: ${err.message ?? String(error)}`);
}
