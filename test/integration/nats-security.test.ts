import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { nkeys, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectNats, NatsConnectError, type NatsSettings } from '../../src/bus/nats-connection.ts';
import { publishJob } from '../../src/client/jobs.ts';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import type { ResultEvent } from '../../src/messages/result.ts';
import { freePort } from '../../src/runtime/local-nats.ts';
import {
  makeOperatorSetup,
  makeTlsFiles,
  startAuthNatsServer,
  type AuthNatsServer,
} from '../helpers/nats-auth-server.ts';
import { spawnNodeProcess } from '../helpers/node-process.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'prism-nats-security-'));
const tls = makeTlsFiles(join(dir, 'tls'));
const write = (name: string, text: string): string => {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
};
const secret = (): string => `s3cret-${Math.random().toString(36).slice(2)}`;

let servers: AuthNatsServer[] = [];
const server = async (settings: string, port?: number): Promise<AuthNatsServer> => {
  const s = await startAuthNatsServer(settings, port);
  servers.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Connects, then proves the connection works: a JetStream publish read back from its stream. */
async function roundTrip(settings: Omit<NatsSettings, 'name'>): Promise<void> {
  const nc: NatsConnection = await connectNats({ ...settings, name: 'security-test' });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'SEC', subjects: ['sec.>'], storage: StorageType.Memory });
    const ack = await jetstream(nc).publish('sec.1', 'hello');
    expect((await jsm.streams.getMessage('SEC', { seq: ack.seq }))?.string()).toBe('hello');
  } finally {
    await nc.close();
  }
}

/** The connection fails fast (not a hang) with a NatsConnectError; returns its message. */
async function refused(settings: Omit<NatsSettings, 'name'>, within = 5_000): Promise<string> {
  const started = Date.now();
  const outcome = await Promise.race([
    connectNats({ ...settings, name: 'security-test' }).then(
      async (nc) => {
        await nc.close();
        return new Error('connected');
      },
      (error: unknown) => error as Error,
    ),
    new Promise<Error>((resolve) => setTimeout(() => resolve(new Error('still waiting')), within + 5_000)),
  ]);
  expect(outcome.message).not.toMatch(/^(connected|still waiting)$/);
  expect(outcome).toBeInstanceOf(NatsConnectError);
  expect(Date.now() - started).toBeLessThan(within);
  return outcome.message;
}

describe('NATS security against real nats-server processes (loopback, free ports)', () => {
  it('user and password: the right ones work, wrong or none fail with a clear error', async () => {
    const password = secret();
    const s = await server(`authorization { users: [ { user: alice, password: "${password}" } ] }`);
    await roundTrip({ url: s.url, security: { user: 'alice', passwordEnv: 'PW' }, env: { PW: password } });
    await roundTrip({ url: s.url, security: { user: 'alice', passwordFile: write('pw', `${password}\n`) } });
    const wrong = secret();
    const message = await refused({
      url: s.url,
      security: { user: 'alice', passwordEnv: 'PW' },
      env: { PW: wrong },
    });
    expect(message).toBe(
      `NATS at ${s.url} refused the login with user "alice" (Authorization Violation): check the credentials`,
    );
    expect(message).not.toContain(wrong);
    expect(await refused({ url: s.url })).toMatch(
      /^NATS at .* requires credentials \(Authorization Violation\): set nats\.user\/passwordEnv, tokenEnv, nkeySeedFile or credsFile in the config, or NATS_USER\/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS$/,
    );
  });

  it('token', async () => {
    const token = secret();
    const s = await server(`authorization { token: "${token}" }`);
    await roundTrip({ url: s.url, security: { tokenFile: write('token', token) } });
    await roundTrip({ url: s.url, security: { tokenEnv: 'TOK' }, env: { TOK: token } });
    expect(await refused({ url: s.url, security: { tokenEnv: 'TOK' }, env: { TOK: 'nope' } })).toMatch(
      /refused the login with token from environment variable TOK \(Authorization Violation\)/,
    );
  });

  it('nkey: the server knows the public key, the client signs its nonce with the seed', async () => {
    const user = nkeys.createUser();
    const seedFile = write('prism.nk', new TextDecoder().decode(user.getSeed()));
    const s = await server(`authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`);
    await roundTrip({ url: s.url, security: { nkeySeedFile: seedFile } });
    const other = write('other.nk', new TextDecoder().decode(nkeys.createUser().getSeed()));
    expect(await refused({ url: s.url, security: { nkeySeedFile: other } })).toMatch(
      /refused the login with nkey seed from file .*other\.nk \(Authorization Violation\)/,
    );
  });

  it('creds file (operator mode, JetStream enabled by the account JWT)', async () => {
    const op = makeOperatorSetup(join(dir, 'operator'));
    const s = await server(op.serverSettings);
    await roundTrip({ url: s.url, security: { credsFile: write('prism.creds', op.creds) } });
    expect(
      await refused({ url: s.url, security: { credsFile: write('stranger.creds', op.strangerCreds) } }),
    ).toMatch(/refused the login with creds file .*stranger\.creds \(Authorization Violation\)/);
    expect(await refused({ url: s.url })).toMatch(/requires credentials/);
  });

  it('TLS: the client verifies the server with caFile; a wrong CA or TLS on one side only fails', async () => {
    const s = await server(
      `tls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", timeout: 5 }`,
    );
    await roundTrip({ url: s.url, security: { tls: { caFile: tls.ca } } });
    await roundTrip({ url: s.url.replace('nats://', 'tls://'), security: { tls: { caFile: tls.ca } } });
    const unverified =
      /^TLS to NATS at .* failed: unable to verify the first certificate.*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/;
    expect(await refused({ url: s.url, security: { tls: { caFile: tls.otherCa } } })).toMatch(unverified);
    // No CA given: the system's CAs do not know the test CA, and the message says what to set.
    expect(await refused({ url: s.url, security: { tls: {} } })).toMatch(
      /\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): set nats\.tls\.caFile \(NATS_CA\)/,
    );
    expect(await refused({ url: s.url })).toMatch(unverified);

    const plain = await server('');
    expect(await refused({ url: plain.url, security: { tls: { caFile: tls.ca } } })).toBe(
      `NATS at ${plain.url} does not offer TLS, but TLS is required here (nats.tls, NATS_CA/NATS_CERT, or a tls:// URL)`,
    );
    expect(await refused({ url: plain.url.replace('nats://', 'tls://') })).toMatch(/does not offer TLS/);
  });

  it('mutual TLS: a client certificate gets in; without one the error says so', async () => {
    const s = await server(
      `tls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", ca_file: "${tls.ca}", verify: true, timeout: 5 }`,
    );
    await roundTrip({
      url: s.url,
      security: { tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } },
    });
    // TLS 1.3: the server drops the connection after the handshake, the client only times out.
    expect(
      await refused({ url: s.url, security: { tls: { caFile: tls.ca } }, attemptTimeoutMs: 1_000 }, 8_000),
    ).toBe(
      `NATS at ${s.url} requires a client certificate (mutual TLS): set nats.tls.certFile and keyFile (NATS_CERT, NATS_KEY)`,
    );
  });

  it('still waits for a server that is not up yet', async () => {
    const token = secret();
    const port = await freePort();
    const connecting = connectNats({
      url: `nats://127.0.0.1:${port}`,
      name: 'early',
      security: { tokenEnv: 'TOK' },
      env: { TOK: token },
    });
    await new Promise((r) => setTimeout(r, 1_500));
    await server(`authorization { token: "${token}" }`, port);
    const nc = await connecting;
    expect(nc.isClosed()).toBe(false);
    await nc.close();
  });

  it('prism node (config), a client (library) and prism status (environment) over mutual TLS with a creds file', async () => {
    const op = makeOperatorSetup(join(dir, 'node-operator'));
    const s = await server(
      `${op.serverSettings}\ntls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", ca_file: "${tls.ca}", verify: true, timeout: 5 }`,
    );
    const credsFile = write('node.creds', op.creds);
    const security = { credsFile, tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } };
    const emulator = await startEmulator({ ...defaultEmulatorConfig(), latencyMs: 5 });
    const host = `127.0.0.1:${emulator.port}`;
    const node = await spawnNodeProcess({
      name: 'secure-node',
      natsUrl: s.url,
      storage: `file:${join(dir, 'data')}`,
      dir,
      config: {
        nats: security,
        node: { metricsInterval: '1s' },
        sources: { adjust: { allowHosts: [host], apis: { report: { paginate: { next: 'next' } } } } },
      },
      // The node's environment has no NATS variables: everything comes from its config file.
      env: { NATS_URL: '', NATS_CREDS: '', NATS_CA: '', NATS_CERT: '', NATS_KEY: '' },
    });
    const nc = await connectNats({ url: s.url, name: 'security-client', security });
    try {
      const result = new Promise<ResultEvent>((resolve) => {
        nc.subscribe('prism.results.>', { callback: (_e, msg) => resolve(msg.json<ResultEvent>()) });
      });
      await nc.flush();
      const id = await publishJob(jetstream(nc), {
        source: 'adjust',
        api: 'report',
        account: 'acc-1',
        request: { url: `${emulator.url}/adjust/acc-1/report`, query: { pages: '1' } },
      });
      const event = await result;
      expect(event).toMatchObject({ id, status: 'ok', node: 'secure-node' });

      const cli = (env: NodeJS.ProcessEnv) =>
        run(process.execPath, ['src/cli/main.ts', 'status', '--json', '--nats', s.url, '--wait', '1500'], {
          env: {
            ...process.env,
            NATS_URL: '',
            NATS_TOKEN: '',
            NATS_USER: '',
            NATS_PASSWORD: '',
            NATS_NKEY: '',
            ...env,
          },
          timeout: 20_000,
        });
      const tlsEnv = { NATS_CA: tls.ca, NATS_CERT: tls.clientCert, NATS_KEY: tls.clientKey };
      const status = await cli({ ...tlsEnv, NATS_CREDS: credsFile });
      expect((JSON.parse(status.stdout) as Array<{ node: string }>).map((n) => n.node)).toEqual([
        'secure-node',
      ]);
      const stranger = write('cli-stranger.creds', op.strangerCreds);
      const failed = await cli({ ...tlsEnv, NATS_CREDS: stranger }).then(
        () => undefined,
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr.trim()).toMatch(
        /^prism: NATS at .* refused the login with creds file .*cli-stranger\.creds \(Authorization Violation\): check the credentials$/,
      );
    } finally {
      await nc.close();
      node.signal('SIGTERM');
      expect(await node.exited).toBe(0);
      await emulator.close();
    }
    // The node's log names the creds file but holds neither its seed nor its JWT.
    const log = readFileSync(node.logFile, 'utf8');
    expect(log).toContain('node started');
    for (const line of op.creds.split('\n').filter((l) => /^(eyJ|SU)/.test(l)))
      expect(log).not.toContain(line);
  });
});
