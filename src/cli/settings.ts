import { loadConfigFile, parseConfig, type PrismConfig } from '../config/load.ts';

/** Flags first, then the environment, then defaults (DESIGN.md "Command line"). */
export interface CommonFlags {
  config?: string;
  nats?: string;
  storage?: string;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_STORAGE = 'file:./data';

export function natsUrl(flags: CommonFlags, env = process.env): string {
  return flags.nats ?? env.NATS_URL ?? DEFAULT_NATS_URL;
}

export function storageUrl(flags: CommonFlags, config: PrismConfig | undefined, env = process.env): string {
  return flags.storage ?? env.PRISM_STORAGE ?? config?.storage ?? DEFAULT_STORAGE;
}

export function loadConfig(flags: CommonFlags, fallback: () => unknown, env = process.env): PrismConfig {
  const file = flags.config ?? env.PRISM_CONFIG;
  return file !== undefined ? loadConfigFile(file) : parseConfig(fallback(), 'embedded default config');
}
