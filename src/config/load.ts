import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigSchema, type PrismConfig, type PrismConfigInput } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates a parsed config object; the error lists every problem with its path. */
export function parseConfig(input: unknown, origin = 'config'): PrismConfig {
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid ${origin}:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export function loadConfigFile(path: string): PrismConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseConfig(json, `config file ${path}`);
}

export type { PrismConfig, PrismConfigInput };
