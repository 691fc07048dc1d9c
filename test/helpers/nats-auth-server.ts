import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { findNatsServer, freePort, isListening } from '../../src/runtime/local-nats.ts';

export interface AuthNatsServer {
  /** `nats://127.0.0.1:<port>` (never 4222). */
  url: string;
  port: number;
  /** The server's own folder: config, JetStream store, log. */
  dir: string;
  /** The server's log so far (for failed assertions). */
  log(): string;
  /** Rewrites the `settings` part of its config and reloads it (SIGHUP), as an operator would. */
  reload(settings: string): void;
  stop(): Promise<void>;
}

/**
 * A nats-server with JetStream on a free loopback port, with `settings` (nats-server config
 * syntax: `authorization { … }`, `tls { … }`, operator settings…) added to its config file.
 */
export async function startAuthNatsServer(settings: string, port?: number): Promise<AuthNatsServer> {
  const binary = findNatsServer();
  if (binary === undefined)
    throw new Error('nats-server is not installed: run .ci/run or `apt-get install nats-server`');
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'prism-test-nats-auth-'));
  const configFile = join(dir, 'nats.conf');
  const logFile = join(dir, 'nats.log');
  const writeConfig = (extra: string): void =>
    writeFileSync(
      configFile,
      [
        `listen: "127.0.0.1:${port}"`,
        `log_file: ${JSON.stringify(logFile)}`,
        `jetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }`,
        extra,
      ].join('\n'),
    );
  writeConfig(settings);
  const child: ChildProcess = spawn(binary, ['-c', configFile], { stdio: 'ignore' });
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    process.off('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    if (await isListening('127.0.0.1', port, 200))
      return {
        url: `nats://127.0.0.1:${port}`,
        port,
        dir,
        log,
        stop,
        reload(next) {
          writeConfig(next);
          child.kill('SIGHUP');
        },
      };
    await new Promise((r) => setTimeout(r, 50));
  }
  const output = log();
  await stop();
  throw new Error(`nats-server did not start on port ${port}:\n${output}`);
}

export interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of the above (a client trusting only it must refuse the server). */
  otherCa: string;
}

/** A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl). */
export function makeTlsFiles(dir: string): TlsFiles {
  mkdirSync(dir, { recursive: true });
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const selfSigned = (name: string, cn: string): void =>
    openssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
    );
  const signed = (name: string, cn: string, extensions: string): void => {
    writeFileSync(f(`${name}.ext`), extensions);
    openssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  selfSigned('ca', 'prism-test-ca');
  selfSigned('other-ca', 'prism-test-other-ca');
  signed('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed('client', 'prism-test-client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    otherCa: f('other-ca.pem'),
  };
}

export interface OperatorSetup {
  /** Lines for the server config: operator, system account, memory resolver with both accounts. */
  serverSettings: string;
  /** A creds file's text for a user of the account (JetStream enabled). */
  creds: string;
  /** A creds file's text for a user signed by an account the server does not know. */
  strangerCreds: string;
}

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** A NATS JWT (v2): `header.claims.signature`, the signature by `issuer` over `header.claims`. */
function encodeJwt(
  issuer: nkeys.KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).update(randomBytes(8)).digest('base64url');
  const body = `${header}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(issuer.sign(new TextEncoder().encode(body)))}`;
}

const UNLIMITED_ACCOUNT = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

function userCreds(account: nkeys.KeyPair, name: string): string {
  const user = nkeys.createUser();
  const jwt = encodeJwt(account, user.getPublicKey(), name, {
    type: 'user',
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
    '*************************************************************',
    '',
  ].join('\n');
}

/**
 * Operator mode without `nsc`: an operator, a system account and an application account with
 * JetStream, their JWTs preloaded into a memory resolver, and a user creds file.
 */
export function makeOperatorSetup(dir: string): OperatorSetup {
  mkdirSync(dir, { recursive: true });
  const operator = nkeys.createOperator();
  const system = nkeys.createAccount();
  const app = nkeys.createAccount();
  const operatorJwt = encodeJwt(operator, operator.getPublicKey(), 'prism-test-operator', {
    type: 'operator',
    system_account: system.getPublicKey(),
  });
  const systemJwt = encodeJwt(operator, system.getPublicKey(), 'SYS', {
    type: 'account',
    limits: { ...UNLIMITED_ACCOUNT, mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0 },
  });
  const appJwt = encodeJwt(operator, app.getPublicKey(), 'APP', {
    type: 'account',
    limits: UNLIMITED_ACCOUNT,
  });
  const operatorFile = join(dir, 'operator.jwt');
  writeFileSync(operatorFile, operatorJwt);
  const serverSettings = [
    `operator: ${JSON.stringify(operatorFile)}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${system.getPublicKey()}: ${JSON.stringify(systemJwt)}`,
    `  ${app.getPublicKey()}: ${JSON.stringify(appJwt)}`,
    '}',
  ].join('\n');
  return {
    serverSettings,
    creds: userCreds(app, 'prism-test-user'),
    strangerCreds: userCreds(nkeys.createAccount(), 'stranger'),
  };
}
