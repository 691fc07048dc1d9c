import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { createSecureContext } from 'node:tls';
import {
  connect,
  credsAuthenticator,
  errors,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type TlsOptions,
} from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface NatsTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  handshakeFirst?: boolean | undefined;
}

/**
 * How to log in to NATS and whether to use TLS (the config's `nats` section). Secrets are named
 * by environment variable or file and read only here, at connect time; they are never logged.
 */
export interface NatsSecurity {
  user?: string | undefined;
  passwordEnv?: string | undefined;
  passwordFile?: string | undefined;
  tokenEnv?: string | undefined;
  tokenFile?: string | undefined;
  nkeySeedEnv?: string | undefined;
  nkeySeedFile?: string | undefined;
  credsFile?: string | undefined;
  /** Present (even `{}`): TLS is required. */
  tls?: NatsTls | undefined;
}

export interface NatsSettings {
  /** Server URL(s), comma-separated; a `tls://` URL requires TLS. */
  url: string;
  name: string;
  security?: NatsSecurity | undefined;
  /** Where `…Env` names are looked up (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Told while the first connection waits for a server that is not reachable yet. */
  log?: Logger | undefined;
  /** How long one connection attempt may take (the client's default is 20 s). */
  attemptTimeoutMs?: number | undefined;
}

/** NATS cannot be used with these settings, and trying again will not change that. */
export class NatsConnectError extends Error {
  override name = 'NatsConnectError';
}

const RECONNECT_WAIT_MS = 500;

/**
 * Connects with the configured credentials and TLS. The client's defaults give up after 10
 * reconnect attempts (~21 s of outage) and throw when the server is not up yet; a node must ride
 * out a NATS restart of any length instead, so the first connection waits for the server too.
 * What waiting cannot fix — credentials refused, a certificate that does not verify, TLS on one
 * side only, a missing file — fails at once with a NatsConnectError that says what to change.
 */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  const servers = serverList(settings.url);
  const { options, login } = connectionOptions(settings, servers);
  const where = `NATS at ${servers.join(',')}`;
  for (let attempt = 1; ; attempt++) {
    try {
      // Our own loop instead of `waitOnFirstConnect`, which retries refused logins and bad
      // certificates for ever just like a server that is down.
      return await connect({ ...options, waitOnFirstConnect: false });
    } catch (error) {
      const fatal = await explainFailure(error, where, login, options.tls ?? undefined, servers);
      if (fatal !== undefined) throw new NatsConnectError(fatal, { cause: error });
      if (attempt === 1 || attempt % 60 === 0)
        settings.log?.warn(
          { nats: servers, attempt, reason: (error as Error).message },
          'NATS not reachable yet: still trying',
        );
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_WAIT_MS));
    }
  }
}

/** The servers to dial; credentials in a URL are refused (the client would ignore them). */
function serverList(url: string): string[] {
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new NatsConnectError('no NATS server URL given');
  for (const server of servers) {
    const authority = server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0] ?? '';
    if (authority.includes('@'))
      throw new NatsConnectError(
        'a NATS URL holds credentials: give them as nats.user/passwordEnv, tokenEnv, nkeySeedFile or credsFile (or NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS) instead',
      );
  }
  return servers;
}

/** The client options, secrets resolved; `login` describes the login without any secret. */
export function connectionOptions(
  settings: NatsSettings,
  servers = serverList(settings.url),
): { options: ConnectionOptions; login: string } {
  const security = settings.security ?? {};
  const env = settings.env ?? process.env;
  const { authenticator, login } = authenticate(security, env);
  const wantsTls = security.tls !== undefined || servers.some((s) => /^tls:\/\//i.test(s));
  const options: ConnectionOptions = {
    servers,
    name: settings.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    pingInterval: 10_000,
    ...(settings.attemptTimeoutMs !== undefined ? { timeout: settings.attemptTimeoutMs } : {}),
    ...(authenticator !== undefined ? { authenticator } : {}),
    ...(wantsTls ? { tls: tlsOptions(security.tls ?? {}) } : {}),
  };
  return { options, login };
}

function authenticate(
  s: NatsSecurity,
  env: NodeJS.ProcessEnv,
): { authenticator: Authenticator | undefined; login: string } {
  if (s.credsFile !== undefined) {
    const file = s.credsFile;
    const creds = latest(() => readSecretFile(file, 'NATS creds file'));
    const authenticator = credsAuthenticator(creds);
    check(authenticator, `NATS creds file ${file} is not a creds file (a user JWT and an nkey seed)`);
    return { authenticator, login: `creds file ${file}` };
  }
  if (s.nkeySeedFile !== undefined || s.nkeySeedEnv !== undefined) {
    const origin =
      s.nkeySeedFile !== undefined ? `file ${s.nkeySeedFile}` : `environment variable ${s.nkeySeedEnv}`;
    const seed = latest(() =>
      new TextEncoder().encode(secret(s.nkeySeedEnv, s.nkeySeedFile, env, 'NATS nkey seed')),
    );
    const authenticator = nkeyAuthenticator(seed);
    check(authenticator, `the NATS nkey seed in ${origin} is not a valid nkey seed (SU…)`);
    return { authenticator, login: `nkey seed from ${origin}` };
  }
  if (s.tokenFile !== undefined || s.tokenEnv !== undefined) {
    const origin = s.tokenFile !== undefined ? `file ${s.tokenFile}` : `environment variable ${s.tokenEnv}`;
    const token = secret(s.tokenEnv, s.tokenFile, env, 'NATS token');
    return { authenticator: tokenAuthenticator(token), login: `token from ${origin}` };
  }
  if (s.user !== undefined) {
    const password = secret(s.passwordEnv, s.passwordFile, env, 'NATS password');
    return {
      authenticator: usernamePasswordAuthenticator(s.user, password),
      login: `user ${JSON.stringify(s.user)}`,
    };
  }
  if (s.passwordEnv !== undefined || s.passwordFile !== undefined)
    throw new NatsConnectError('a NATS password needs a user (nats.user, NATS_USER)');
  return { authenticator: undefined, login: 'no credentials' };
}

/** The value of an environment variable or the content of a file, trimmed; never empty. */
function secret(
  envName: string | undefined,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  what: string,
): string {
  let value: string;
  if (file !== undefined) value = new TextDecoder().decode(readSecretFile(file, what));
  else if (envName !== undefined) {
    value = env[envName] ?? '';
    if (value === '') throw new NatsConnectError(`${what}: environment variable ${envName} is not set`);
  } else throw new NatsConnectError(`${what}: give an environment variable or a file`);
  value = value.trim();
  if (value === '') throw new NatsConnectError(`${what} is empty`);
  return value;
}

function readSecretFile(file: string, what: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NatsConnectError(
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/**
 * Reads now (a failure is a start-up error), then again at every reconnect so that a rotated
 * file is picked up; keeps the last good value if a later read fails.
 */
function latest(read: () => Uint8Array): () => Uint8Array {
  let last = read();
  return () => {
    try {
      last = read();
    } catch {
      // keep the last good value
    }
    return last;
  };
}

/** Runs the authenticator once on a dummy nonce, so a malformed seed or creds file fails now. */
function check(authenticator: Authenticator, message: string): void {
  try {
    authenticator('prism-start-up-check');
  } catch {
    throw new NatsConnectError(message);
  }
}

function tlsOptions(tls: NatsTls): TlsOptions {
  // Read the files now so a wrong path or a key that does not fit its certificate is a clear
  // start-up error; the client reads them again at every connection.
  const read = (file: string | undefined, what: string): string | undefined =>
    file === undefined ? undefined : new TextDecoder().decode(readSecretFile(file, what));
  const ca = read(tls.caFile, 'NATS TLS CA file');
  const cert = read(tls.certFile, 'NATS TLS certificate file');
  const key = read(tls.keyFile, 'NATS TLS key file');
  try {
    createSecureContext({ ca, cert, key });
  } catch (error) {
    throw new NatsConnectError(
      `NATS TLS files ${[tls.caFile, tls.certFile, tls.keyFile].filter(Boolean).join(', ')} cannot be used: ${(error as Error).message}`,
    );
  }
  return {
    ...(tls.caFile !== undefined ? { caFile: tls.caFile } : {}),
    ...(tls.certFile !== undefined ? { certFile: tls.certFile } : {}),
    ...(tls.keyFile !== undefined ? { keyFile: tls.keyFile } : {}),
    ...(tls.handshakeFirst !== undefined ? { handshakeFirst: tls.handshakeFirst } : {}),
  };
}

const CERT_ERROR = /^(ERR_SSL_|ERR_TLS_)|CERT|SIGNATURE|ISSUER/;

/** Why connecting can never work with these settings, or undefined when waiting may help. */
async function explainFailure(
  error: unknown,
  where: string,
  login: string,
  tls: TlsOptions | undefined,
  servers: string[],
): Promise<string | undefined> {
  const err = error as Error & { code?: unknown };
  const setCredentials =
    'set nats.user/passwordEnv, tokenEnv, nkeySeedFile or credsFile in the config, or NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS';
  if (error instanceof errors.UserAuthenticationExpiredError)
    return `${where} refused the login with ${login}: the credentials have expired`;
  if (error instanceof errors.AuthorizationError)
    return login === 'no credentials'
      ? `${where} requires credentials (${err.message}): ${setCredentials}`
      : `${where} refused the login with ${login} (${err.message}): check the credentials`;
  if (typeof err.code === 'string' && CERT_ERROR.test(err.code))
    return `TLS to ${where} failed: ${err.message} (${err.code})${
      tls?.caFile === undefined && /VERIFY|SELF_SIGNED|ISSUER/.test(err.code)
        ? ": set nats.tls.caFile (NATS_CA) to the CA that signed the server's certificate"
        : ''
    }`;
  if (error instanceof errors.ConnectionError && /does not support 'tls'/.test(err.message))
    return `${where} does not offer TLS, but TLS is required here (nats.tls, NATS_CA/NATS_CERT, or a tls:// URL)`;
  if (error instanceof errors.InvalidArgumentError && /tls/i.test(err.message))
    return `${where}: ${err.message}`;
  if (typeof err.code === 'string' && (err.code === 'ENOENT' || err.code === 'EACCES'))
    return `${where}: ${err.message}`;
  // A server that asks for a client certificate closes a TLS 1.3 connection without one after the
  // handshake; the client only sees a timeout. Its INFO line says whether it asks for one.
  if (error instanceof errors.TimeoutError && tls?.certFile === undefined && tls?.handshakeFirst !== true) {
    for (const server of servers) {
      const info = await serverInfo(server);
      if (info?.tls_verify === true)
        return `${where} requires a client certificate (mutual TLS): set nats.tls.certFile and keyFile (NATS_CERT, NATS_KEY)`;
    }
  }
  return undefined;
}

/** The server's INFO (sent in clear before any TLS), or undefined. */
function serverInfo(server: string, timeoutMs = 2_000): Promise<Record<string, unknown> | undefined> {
  let host: string;
  let port: number;
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    port = url.port === '' ? 4222 : Number(url.port);
  } catch {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    let buffer = '';
    const done = (info: Record<string, unknown> | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(info);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      const end = buffer.indexOf('\r\n');
      if (end < 0) {
        if (buffer.length > 65_536) done(undefined);
        return;
      }
      const line = buffer.slice(0, end);
      try {
        done(line.startsWith('INFO ') ? (JSON.parse(line.slice(5)) as Record<string, unknown>) : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });
}

/** Logs the connection's disconnects, reconnects and errors (it reconnects by itself). */
export function watchConnection(nc: NatsConnection, log: Logger): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error') {
        log.warn({ nats: status.type }, `NATS ${status.type}`);
      }
    }
  })().catch(() => undefined);
}

/**
 * Settles when `nc` closes for good while `meant()` is false (the node is not draining): the
 * server revoked its credentials, say. The node can do nothing more; `prism node` exits non-zero.
 */
export function closedForGood(nc: NatsConnection, log: Logger, meant: () => boolean): Promise<Error> {
  return new Promise<Error>((resolve) => {
    void nc.closed().then((error) => {
      if (meant()) return;
      log.error({ err: error }, 'NATS connection closed for good');
      resolve(error ?? new Error('the NATS connection closed'));
    });
  });
}
