import { isIP } from 'node:net';
import { z } from 'zod';
import { SEND_ALLOWANCE_MS } from '../limits/ledger.ts';
import { parseDuration } from './duration.ts';

/** A duration written as `5s`, `1h`, … or a number of milliseconds; becomes milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const TEMPLATE_VARS = /\{(source|api|account|node|meta\.[A-Za-z0-9_]+)\}/g;
const template = z
  .string()
  .min(1)
  .refine((t) => t.replace(TEMPLATE_VARS, '').match(/[{}]/) === null, {
    message: 'unknown placeholder: use {source}, {api}, {account}, {node} or {meta.<field>}',
  });

/**
 * One limit of a platform, in one of two shapes, for the calls its `key` template names (every
 * node together):
 * - a window: at most `limit` calls in any window of `per` (or per UTC day with `reset`);
 * - a concurrency cap: at most `concurrent` calls in flight at once.
 */
const LimitSchema = z
  .strictObject({
    /** Which calls share this limit: `{source}/{account}` is one account across all its APIs. */
    key: template,
    limit: z.int().positive().optional(),
    per: duration.refine((ms) => ms >= 1, 'per must be at least 1ms').optional(),
    /** `utc-day`: the count resets at 00:00 UTC instead of rolling (daily quotas). */
    reset: z.enum(['rolling', 'utc-day']).optional(),
    /** Calls of the key in flight at once, on all nodes together. */
    concurrent: z.int().positive().max(100_000).optional(),
  })
  .superRefine((limit, ctx) => {
    const problem = (message: string): void => ctx.addIssue({ code: 'custom', message });
    if (limit.concurrent !== undefined) {
      if (limit.limit !== undefined || limit.per !== undefined || limit.reset !== undefined)
        problem('a limit is either a window (limit + per) or a concurrency cap (concurrent), not both');
    } else if (limit.limit === undefined || limit.per === undefined)
      problem('a limit needs limit and per (at most `limit` calls per `per`), or concurrent');
  })
  .transform((limit): LimitConfig =>
    limit.concurrent !== undefined
      ? { kind: 'concurrent', key: limit.key, concurrent: limit.concurrent }
      : {
          kind: limit.reset ?? 'rolling',
          key: limit.key,
          limit: limit.limit as number,
          per: limit.per as number,
        },
  );

export type LimitConfig =
  | { kind: 'rolling' | 'utc-day'; key: string; limit: number; per: number }
  | { kind: 'concurrent'; key: string; concurrent: number };

const AuthSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('bearer'),
    tokenEnv: z.string().optional(),
    tokenFile: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('header'),
    header: z.string().min(1),
    tokenEnv: z.string().optional(),
    tokenFile: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('query'),
    param: z.string().min(1),
    tokenEnv: z.string().optional(),
    tokenFile: z.string().optional(),
  }),
]);

const PaginateSchema = z.union([
  /** The body holds the next page's absolute URL (Meta `paging.next`). */
  z.strictObject({ next: z.string().min(1) }),
  /** The body holds a cursor to send back as a query parameter. */
  z.strictObject({ cursor: z.string().min(1), param: z.string().min(1) }),
  /** Page numbers (TikTok `page_info.page` / `page_info.total_page`). */
  z.strictObject({ page: z.string().min(1), totalPages: z.string().min(1), param: z.string().min(1) }),
]);

const SignalSchema = z.strictObject({
  /** Human name used in logs and status, e.g. `meta-user-limit`. */
  name: z.string().min(1),
  match: z.strictObject({
    status: z.union([z.int(), z.array(z.int())]).optional(),
    /** JSON path in the body and the values that mean "throttled" (numbers or [from, to] ranges). */
    body: z
      .strictObject({
        path: z.string().min(1),
        in: z.array(z.union([z.string(), z.number(), z.tuple([z.number(), z.number()])])).min(1),
      })
      .optional(),
    header: z.string().optional(),
  }),
  /** Which calls the signal stops: a limit-key template such as `{source}/{account}`. */
  scope: template.default('{source}/{api}/{account}'),
  action: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('pause'),
      for: duration.optional(),
      /** A JSON path to the platform's own delay (Google's `retryDelay: "5s"`). */
      delayPath: z.string().min(1).optional(),
    }),
    z.strictObject({ type: z.literal('pause-until'), reset: z.literal('utc-day') }),
    /**
     * Spaces the scope's calls at least `interval` apart, or `factor` times as wide as the call's
     * strictest limit allows (1 s × factor without a limit), until `for` or Retry-After ends.
     */
    z.strictObject({
      type: z.literal('slow'),
      interval: duration.refine((ms) => ms >= 1, 'interval must be at least 1ms').optional(),
      factor: z.number().min(1).default(2),
      for: duration.optional(),
    }),
  ]),
});

/** Reading a platform's usage headers to slow down before its limit (Meta). */
const UsageSchema = z.strictObject({
  kind: z.literal('meta'),
  /** Usage percentage from which calls of the scope are spaced out. */
  slowAt: z.number().min(0).max(100).default(75),
  /** Usage percentage from which the scope pauses until its window resets. */
  pauseAt: z.number().min(0).max(100).default(95),
  /** Spacing at slowAt; it doubles every 5 points above. */
  slowInterval: duration.default(2_000),
  /** How long a slowdown lasts unless renewed by the next answer. */
  slowFor: duration.default(60_000),
});

const ApiSchema = z.strictObject({
  /** Calls of this key in flight at once. */
  concurrency: z.int().positive().default(1),
  paginate: PaginateSchema.optional(),
  /** Limits only for this API, on top of the source's. */
  limits: z.array(LimitSchema).default([]),
  /** How much of each limit one call spends (Meta: reads 1, writes 3). */
  weight: z.int().positive().default(1),
  /** At most this many pages per job (a guard against cursor loops). */
  maxPages: z.int().positive().default(10_000),
});

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

const SourceSchema = z.strictObject({
  allowHosts: z.array(z.string().regex(HOST, 'allowHosts entries are host names or host:port')).min(1),
  auth: z.record(z.string(), AuthSchema).default({}),
  limits: z.array(LimitSchema).default([]),
  signals: z.array(SignalSchema).default([]),
  usage: UsageSchema.optional(),
  apis: z.record(z.string().min(1), ApiSchema).refine((apis) => Object.keys(apis).length > 0, {
    message: 'a source needs at least one api',
  }),
});

/** More worker threads than this is not a node any machine here runs well. */
export const MAX_SHARDS = 64;

const NodeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  /** Requests in flight on this node (the collector pool's size). */
  concurrency: z.int().positive().max(100_000).default(1024),
  /**
   * Worker threads the node splits its keys over, each with its own heap (src/runtime/sharded-node.ts):
   * at 100,000 keys one heap's full collections stall its calls. 1: no shards.
   */
  shards: z.int().min(1).max(MAX_SHARDS).default(1),
  /** Jobs a node holds at once (parked + in flight); the rest wait in JetStream. */
  maxParked: z.int().positive().default(10_000),
  maxParkedPerKey: z.int().positive().default(1_000),
  /** Idle throttle actors stop after this long; their limit state stays in the ledger. */
  passivateAfter: duration.default(60_000),
  metricsInterval: duration.default(10_000),
  /** A job message larger than this goes to the DLQ. */
  maxJobBytes: z
    .int()
    .positive()
    .default(256 * 1024),
  /** A response body larger than this fails the call. */
  maxBodyBytes: z
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /**
   * Response bytes the node holds at once, across all its calls (read and not yet stored). A call
   * that reads beyond it stops reading until other pages are stored; the oldest call always reads
   * on, so a node holds at most this plus one body of maxBodyBytes.
   */
  maxBodyBytesHeld: z
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  requestTimeout: duration.default(30_000),
  /** Real attempts (5xx, timeouts, connection errors) before a job goes to the DLQ. */
  maxAttempts: z.int().positive().default(5),
  backoffBase: duration.default(1_000),
  backoffMax: duration.default(5 * 60_000),
  /**
   * The local address API calls leave from, on a host with several egress IPs: one node per IP,
   * and limits keyed `{node}` count per IP, as Adjust does.
   */
  egressAddress: z
    .string()
    .refine((address) => isIP(address) !== 0, 'egressAddress must be an IPv4 or IPv6 address of this host')
    .optional(),
  /** Kept on top of every window for clock skew and transit jitter (see docs). */
  limitMargin: duration.default(25),
  /**
   * nats-kv ledger: how long after its grant a call may still leave. Other nodes count the call
   * from that latest time until its node says when it left; a call not written by then is
   * stopped and waits for a new slot (README, "The margin, and why").
   */
  sendAllowance: duration
    .refine((ms) => ms >= 50, 'must be at least 50ms: calls held up longer are stopped before they leave')
    .default(SEND_ALLOWANCE_MS),
  ackWait: duration.default(30_000),
  /**
   * max_ack_pending of the consumer all nodes share; -1: no limit. A job handed back with a
   * delay (its key waits for a daily quota, or holds maxParkedPerKey already) stays pending in
   * JetStream until it is delivered again, and once this many are pending JetStream delivers no
   * job of any key: a finite value lets a deep backlog behind one key stop every other key.
   * Each pending job costs the NATS server some memory instead (see README).
   */
  maxAckPending: z
    .int()
    .refine((n) => n === -1 || n > 0, { message: 'must be -1 (no limit) or a positive integer' })
    .default(-1),
  /** `nats-kv`: limits hold for every node together (JetStream KV); `memory`: for this node only. */
  ledger: z.enum(['nats-kv', 'memory']).default('nats-kv'),
  drainTimeout: duration.default(20_000),
});

const NatsTlsSchema = z.strictObject({
  /** PEM file of the CA that signed the server's certificate (default: the system's CAs). */
  caFile: z.string().min(1).optional(),
  /** Client certificate and its key, for servers that ask for one (mutual TLS). */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /** TLS before the server's INFO (server option `handshake_first`, nats-server 2.10+). */
  handshakeFirst: z.boolean().optional(),
});

/**
 * How to reach NATS. Secrets are named by environment variable or file, never written here.
 * Messages name the CLI's environment variables too, as `prism` checks those with this schema.
 */
export const NatsSchema = z
  .strictObject({
    /** Server URL(s), comma-separated; `tls://` requires TLS. */
    url: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    passwordEnv: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    tokenEnv: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    /** A user nkey seed (`SU…`), the server knowing its public key. */
    nkeySeedEnv: z.string().min(1).optional(),
    nkeySeedFile: z.string().min(1).optional(),
    /** A `.creds` file: user JWT and nkey seed (operator/JWT mode). */
    credsFile: z.string().min(1).optional(),
    /** Present (even `{}`): TLS is required. */
    tls: NatsTlsSchema.optional(),
  })
  .superRefine((nats, ctx) => {
    const problem = (path: string[], message: string): void =>
      ctx.addIssue({ code: 'custom', path, message });
    const password = nats.passwordEnv !== undefined || nats.passwordFile !== undefined;
    if (nats.passwordEnv !== undefined && nats.passwordFile !== undefined)
      problem(['passwordFile'], 'give passwordEnv or passwordFile, not both');
    if (nats.tokenEnv !== undefined && nats.tokenFile !== undefined)
      problem(['tokenFile'], 'give tokenEnv or tokenFile, not both');
    if (nats.nkeySeedEnv !== undefined && nats.nkeySeedFile !== undefined)
      problem(['nkeySeedFile'], 'give nkeySeedEnv or nkeySeedFile, not both');
    if (password && nats.user === undefined)
      problem(['user'], 'a password needs a user (nats.user, NATS_USER)');
    if (nats.user !== undefined && !password)
      problem(['user'], 'a user needs a password: passwordEnv or passwordFile (NATS_PASSWORD)');
    const methods = [
      nats.user !== undefined || password ? 'user/password' : undefined,
      nats.tokenEnv !== undefined || nats.tokenFile !== undefined ? 'token' : undefined,
      nats.nkeySeedEnv !== undefined || nats.nkeySeedFile !== undefined ? 'nkey seed' : undefined,
      nats.credsFile !== undefined ? 'creds file' : undefined,
    ].filter((m) => m !== undefined);
    if (methods.length > 1) problem([], `choose one way to log in to NATS, not ${methods.join(' and ')}`);
    if (nats.tls?.certFile !== undefined && nats.tls.keyFile === undefined)
      problem(['tls', 'keyFile'], 'tls.certFile needs tls.keyFile (NATS_CERT needs NATS_KEY)');
    if (nats.tls?.keyFile !== undefined && nats.tls.certFile === undefined)
      problem(['tls', 'certFile'], 'tls.keyFile needs tls.certFile (NATS_KEY needs NATS_CERT)');
  });

export const ConfigSchema = z.strictObject({
  node: NodeSchema.default(NodeSchema.parse({})),
  nats: NatsSchema.default({}),
  storage: z.string().optional(),
  sources: z.record(z.string().min(1), SourceSchema),
});

export type PrismConfig = z.output<typeof ConfigSchema>;
export type SourceConfig = z.output<typeof SourceSchema>;
export type ApiConfig = z.output<typeof ApiSchema>;
export type SignalConfig = z.output<typeof SignalSchema>;
export type UsageConfig = z.output<typeof UsageSchema>;
export type AuthConfig = z.output<typeof AuthSchema>;
export type PaginateConfig = z.output<typeof PaginateSchema>;
export type NodeSettings = z.output<typeof NodeSchema>;
export type NatsConfig = z.output<typeof NatsSchema>;
export type PrismConfigInput = z.input<typeof ConfigSchema>;
