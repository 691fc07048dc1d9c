import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys, type Authenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { connectionOptions, NatsConnectError, type NatsSecurity } from '../../src/bus/nats-connection.ts';
import { natsSettings } from '../../src/cli/settings.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { makeOperatorSetup, makeTlsFiles } from '../helpers/nats-auth-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'prism-nats-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const withNats = (nats: unknown) => ({ nats, sources: {} });
const configError = (nats: unknown): string => {
  try {
    parseConfig(withNats(nats));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
};

describe('the config’s nats section', () => {
  it('accepts each way to log in, and TLS', () => {
    for (const nats of [
      {},
      { url: 'nats://a:4222,nats://b:4222' },
      { user: 'prism', passwordEnv: 'NATS_PW' },
      { user: 'prism', passwordFile: '/run/secrets/nats-pw' },
      { tokenEnv: 'NATS_TOK' },
      { tokenFile: '/run/secrets/nats-token' },
      { nkeySeedFile: '/run/secrets/prism.nk' },
      { nkeySeedEnv: 'PRISM_NKEY' },
      { credsFile: '/run/secrets/prism.creds', tls: { caFile: '/etc/ca.pem' } },
      { tls: {} },
      { tls: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem', handshakeFirst: true } },
    ])
      expect(() => parseConfig(withNats(nats)), JSON.stringify(nats)).not.toThrow();
  });

  it('refuses secrets written into it', () => {
    expect(configError({ user: 'prism', password: 'hunter2' })).toMatch(/password/);
    expect(configError({ token: 't0k' })).toMatch(/token/);
    expect(configError({ tls: { key: '-----BEGIN' } })).toMatch(/key/);
  });

  it('says what is wrong with an incomplete or ambiguous login', () => {
    expect(configError({ passwordEnv: 'PW' })).toMatch(/a password needs a user.*\n?.*nats\.user/);
    expect(configError({ user: 'prism' })).toMatch(/a user needs a password/);
    expect(configError({ user: 'prism', passwordEnv: 'PW', passwordFile: 'pw' })).toMatch(
      /passwordEnv or passwordFile, not both/,
    );
    expect(configError({ tokenEnv: 'T', tokenFile: 't' })).toMatch(/tokenEnv or tokenFile, not both/);
    expect(configError({ nkeySeedEnv: 'S', nkeySeedFile: 's' })).toMatch(/not both/);
    expect(configError({ tokenEnv: 'T', credsFile: 'x.creds' })).toMatch(
      /one way to log in to NATS, not token and creds file/,
    );
    expect(configError({ user: 'u', passwordEnv: 'P', nkeySeedFile: 's' })).toMatch(
      /not user\/password and nkey seed/,
    );
  });

  it('says what is wrong with TLS files', () => {
    expect(configError({ tls: { certFile: 'c.pem' } })).toMatch(/tls\.certFile needs tls\.keyFile/);
    expect(configError({ tls: { keyFile: 'k.pem' } })).toMatch(/tls\.keyFile needs tls\.certFile/);
    expect(configError({ tls: { handshakeFirst: 'yes' } })).toMatch(/handshakeFirst/);
    expect(configError({ tls: { caFile: '' } })).toMatch(/caFile/);
  });
});

describe('natsSettings: flags, then the environment, then the config', () => {
  const config = parseConfig(
    withNats({ url: 'nats://config:4222', tokenEnv: 'CONFIG_TOKEN', tls: { caFile: '/config/ca.pem' } }),
  );

  it('takes the URL from the flag, NATS_URL, the config, or the default', () => {
    expect(natsSettings({ nats: 'nats://flag:1' }, config, { NATS_URL: 'nats://env:2' }).url).toBe(
      'nats://flag:1',
    );
    expect(natsSettings({}, config, { NATS_URL: 'nats://env:2' }).url).toBe('nats://env:2');
    expect(natsSettings({}, config, {}).url).toBe('nats://config:4222');
    expect(natsSettings({}, undefined, {}).url).toBe('nats://127.0.0.1:4222');
  });

  it('uses the config’s login when the environment has none', () => {
    expect(natsSettings({}, config, {}).security).toMatchObject({
      tokenEnv: 'CONFIG_TOKEN',
      tls: { caFile: '/config/ca.pem' },
    });
  });

  it('maps the nats CLI’s variables to names of secrets, never to their values', () => {
    const env = { NATS_USER: 'alice', NATS_PASSWORD: 'hunter2-secret', NATS_CA: '/env/ca.pem' };
    const { security } = natsSettings({}, config, env);
    expect(security).toMatchObject({
      user: 'alice',
      passwordEnv: 'NATS_PASSWORD',
      tls: { caFile: '/env/ca.pem' },
    });
    expect(security.tokenEnv).toBeUndefined(); // the environment's login replaces the config's
    expect(JSON.stringify(security)).not.toContain('hunter2-secret');
    expect(natsSettings({}, undefined, { NATS_TOKEN: 'tok-secret' }).security).toEqual({
      tokenEnv: 'NATS_TOKEN',
    });
    expect(natsSettings({}, undefined, { NATS_NKEY: '/k/prism.nk' }).security).toEqual({
      nkeySeedFile: '/k/prism.nk',
    });
    expect(natsSettings({}, undefined, { NATS_CREDS: '/c/env.creds' }).security).toEqual({
      credsFile: '/c/env.creds',
    });
    expect(
      natsSettings({ natsCreds: '/c/flag.creds' }, undefined, { NATS_CREDS: '/c/env.creds' }).security,
    ).toEqual({ credsFile: '/c/flag.creds' });
    expect(
      natsSettings({}, config, { NATS_CERT: '/env/c.pem', NATS_KEY: '/env/k.pem' }).security.tls,
    ).toEqual({ caFile: '/config/ca.pem', certFile: '/env/c.pem', keyFile: '/env/k.pem' });
  });

  it('ignores empty variables', () => {
    expect(natsSettings({}, config, { NATS_USER: '', NATS_URL: '' })).toMatchObject({
      url: 'nats://config:4222',
      security: { tokenEnv: 'CONFIG_TOKEN' },
    });
  });

  it('says what is wrong with the environment', () => {
    const fails = (env: NodeJS.ProcessEnv, pattern: RegExp, flags = {}): void => {
      expect(() => natsSettings(flags, undefined, env)).toThrow(ConfigError);
      expect(() => natsSettings(flags, undefined, env)).toThrow(pattern);
    };
    fails({ NATS_PASSWORD: 'x' }, /a password needs a user \(nats\.user, NATS_USER\)/);
    fails({ NATS_USER: 'alice' }, /a user needs a password.*NATS_PASSWORD/);
    fails({ NATS_TOKEN: 't', NATS_CREDS: '/c' }, /not token and creds file/);
    fails({ NATS_TOKEN: 't' }, /not token and creds file/, { natsCreds: '/c' });
    fails({ NATS_CERT: '/c.pem' }, /NATS_CERT needs NATS_KEY/);
    fails({ NATS_KEY: '/k.pem' }, /NATS_KEY needs NATS_CERT/);
  });
});

describe('connectionOptions: the settings as the client’s options', () => {
  type Fields = Record<string, string | undefined>;
  const login = (options: ConnectionOptions, nonce = 'a-nonce'): Fields =>
    (options.authenticator as Authenticator)(nonce) as unknown as Fields;
  const authOf = (
    security: NatsSecurity,
    env: NodeJS.ProcessEnv = {},
    url = 'nats://127.0.0.1:1',
  ): Fields => {
    const { options } = connectionOptions({ url, name: 't', security, env });
    expect(options.authenticator).toBeTypeOf('function');
    return login(options);
  };
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('keeps the reconnect settings: retry for ever, every 500 ms', () => {
    const { options, login } = connectionOptions({ url: 'nats://a:1, nats://b:2', name: 'prism-x' });
    expect(options).toMatchObject({
      servers: ['nats://a:1', 'nats://b:2'],
      name: 'prism-x',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    expect(options.authenticator).toBeUndefined();
    expect(options.tls).toBeUndefined();
    expect(login).toBe('no credentials');
  });

  it('user and password, from a variable or a file (trimmed)', () => {
    expect(authOf({ user: 'alice', passwordEnv: 'PW' }, { PW: 'pa ss' })).toEqual({
      user: 'alice',
      pass: 'pa ss',
    });
    expect(authOf({ user: 'alice', passwordFile: write('pw', 'from-file\n') })).toEqual({
      user: 'alice',
      pass: 'from-file',
    });
  });

  it('a token', () => {
    expect(authOf({ tokenEnv: 'TOK' }, { TOK: 's3cr3t' })).toEqual({ auth_token: 's3cr3t' });
    expect(authOf({ tokenFile: write('tok', 'file-token\n') })).toEqual({ auth_token: 'file-token' });
  });

  it('an nkey seed signs the nonce', () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    for (const auth of [
      authOf({ nkeySeedFile: write('u.nk', `${seed}\n`) }),
      authOf({ nkeySeedEnv: 'NK' }, { NK: seed }),
    ]) {
      expect(auth.nkey).toBe(user.getPublicKey());
      expect(user.verify(new TextEncoder().encode('a-nonce'), nkeys.decode(auth.sig as string))).toBe(true);
    }
  });

  it('a creds file gives its JWT and signs with its seed, re-read at every connection', () => {
    const setup = makeOperatorSetup(join(dir, 'op'));
    const file = write('u.creds', setup.creds);
    const { options } = connectionOptions({
      url: 'nats://127.0.0.1:1',
      name: 't',
      security: { credsFile: file },
    });
    const auth = login(options);
    expect(auth.jwt).toBe(setup.creds.split('\n')[1]);
    expect(auth.nkey).toMatch(/^U/);
    writeFileSync(file, setup.strangerCreds); // rotated
    expect(login(options).jwt).toBe(setup.strangerCreds.split('\n')[1]);
    rmSync(file); // gone: the last good one is kept
    expect(login(options).jwt).toBe(setup.strangerCreds.split('\n')[1]);
  });

  it('TLS: the files go to the client; `tls: {}` or a tls:// URL require TLS', () => {
    const tls = makeTlsFiles(join(dir, 'tls'));
    const security = { tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } };
    expect(connectionOptions({ url: 'nats://127.0.0.1:1', name: 't', security }).options.tls).toEqual(
      security.tls,
    );
    expect(connectionOptions({ url: 'nats://h:1', name: 't', security: { tls: {} } }).options.tls).toEqual(
      {},
    );
    expect(connectionOptions({ url: 'tls://h:1', name: 't' }).options.tls).toEqual({});
  });

  it('fails at once, without showing a secret, when a secret or file is missing or malformed', () => {
    const fails = (security: NatsSecurity, pattern: RegExp, env: NodeJS.ProcessEnv = {}): void => {
      let message = '';
      try {
        connectionOptions({ url: 'nats://127.0.0.1:1', name: 't', security, env });
      } catch (error) {
        expect(error).toBeInstanceOf(NatsConnectError);
        message = (error as Error).message;
      }
      expect(message).toMatch(pattern);
      expect(message).not.toContain('leaked-secret');
    };
    fails({ user: 'alice', passwordEnv: 'NOPE' }, /NATS password: environment variable NOPE is not set/);
    fails({ tokenFile: join(dir, 'missing') }, /cannot read NATS token .*missing: ENOENT/);
    fails({ tokenFile: write('empty', '\n') }, /NATS token is empty/);
    fails({ nkeySeedEnv: 'NK' }, /nkey seed in environment variable NK is not a valid nkey seed/, {
      NK: 'leaked-secret',
    });
    fails({ credsFile: write('bad.creds', 'leaked-secret') }, /is not a creds file/);
    fails({ credsFile: join(dir, 'none.creds') }, /cannot read NATS creds file .*none\.creds: ENOENT/);
    fails({ tls: { caFile: join(dir, 'no-ca.pem') } }, /cannot read NATS TLS CA file .*ENOENT/);
    const tls = makeTlsFiles(join(dir, 'tls2'));
    fails(
      { tls: { certFile: tls.clientCert, keyFile: tls.serverKey } },
      /cannot be used: .*key values mismatch/,
    );
  });

  it('refuses credentials in a URL without repeating them', () => {
    for (const url of [
      'nats://alice:leaked-secret@h:4222',
      'leaked-secret@h:4222',
      'nats://h:1,tls://t:leaked-secret@h:2',
    ])
      expect(() => connectionOptions({ url, name: 't' })).toThrow(
        /a NATS URL holds credentials: give them as/,
      );
    try {
      connectionOptions({ url: 'nats://alice:leaked-secret@h:4222', name: 't' });
    } catch (error) {
      expect((error as Error).message).not.toContain('leaked-secret');
    }
  });
});
