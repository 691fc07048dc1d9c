import { z } from 'zod';
import type { NatsSecurity } from '../bus/nats-connection.ts';
import { ConfigError, loadConfigFile, parseConfig, type PrismConfig } from '../config/load.ts';
import { NatsSchema } from '../config/schema.ts';

/** Flags first, then the environment, then defaults (DESIGN.md "Command line"). */
export interface CommonFlags {
  config?: string;
  nats?: string;
  /** `--nats-creds FILE` */
  natsCreds?: string;
  storage?: string;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_STORAGE = 'file:./data';

export function natsUrl(flags: CommonFlags, env = process.env): string {
  return flags.nats ?? env.NATS_URL ?? DEFAULT_NATS_URL;
}

/**
 * Where NATS is and how to log in. URL: flag, NATS_URL, config, default. Credentials given by
 * flags or the environment (the `nats` CLI's variables: NATS_USER + NATS_PASSWORD, NATS_TOKEN,
 * NATS_NKEY (seed file), NATS_CREDS (file)) replace the config's as a whole; NATS_CA, and
 * NATS_CERT + NATS_KEY as a pair, replace the config's TLS files. Secrets stay in the
 * environment or their files: the result only names them.
 */
export function natsSettings(
  flags: Pick<CommonFlags, 'nats' | 'natsCreds'>,
  config?: PrismConfig,
  env = process.env,
): { url: string; security: NatsSecurity } {
  const set = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const url = flags.nats ?? set('NATS_URL') ?? config?.nats.url ?? DEFAULT_NATS_URL;
  const fromEnv: NatsSecurity = {
    ...(set('NATS_USER') !== undefined ? { user: set('NATS_USER') } : {}),
    ...(set('NATS_PASSWORD') !== undefined ? { passwordEnv: 'NATS_PASSWORD' } : {}),
    ...(set('NATS_TOKEN') !== undefined ? { tokenEnv: 'NATS_TOKEN' } : {}),
    ...(set('NATS_NKEY') !== undefined ? { nkeySeedFile: set('NATS_NKEY') } : {}),
    ...((flags.natsCreds ?? set('NATS_CREDS')) !== undefined
      ? { credsFile: flags.natsCreds ?? set('NATS_CREDS') }
      : {}),
  };
  const { url: _url, tls: configTls, ...fromConfig } = config?.nats ?? {};
  let tls = configTls;
  if (set('NATS_CA') !== undefined) tls = { ...tls, caFile: set('NATS_CA') };
  if (set('NATS_CERT') !== undefined || set('NATS_KEY') !== undefined)
    tls = { ...tls, certFile: set('NATS_CERT'), keyFile: set('NATS_KEY') };
  const security = {
    ...(Object.keys(fromEnv).length > 0 ? fromEnv : fromConfig),
    ...(tls !== undefined ? { tls } : {}),
  };
  const checked = NatsSchema.safeParse(security);
  if (!checked.success)
    throw new ConfigError(
      `invalid NATS settings (flags, environment${config !== undefined ? ', config' : ''}):\n${z.prettifyError(checked.error)}`,
    );
  return { url, security: checked.data };
}

export function storageUrl(flags: CommonFlags, config: PrismConfig | undefined, env = process.env): string {
  return flags.storage ?? env.PRISM_STORAGE ?? config?.storage ?? DEFAULT_STORAGE;
}

export function loadConfig(flags: CommonFlags, fallback: () => unknown, env = process.env): PrismConfig {
  const file = flags.config ?? env.PRISM_CONFIG;
  return file !== undefined ? loadConfigFile(file) : parseConfig(fallback(), 'embedded default config');
}
