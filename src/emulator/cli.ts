import { readFile } from 'node:fs/promises';
import { defaultEmulatorConfig, EmulatorConfigError, parseEmulatorConfig, ruleName } from './config.ts';
import { startEmulator } from './server.ts';
import type { EmulatorConfig, EmulatorHandle } from './types.ts';

export interface MockApiOptions {
  port?: number;
  host?: string;
  /** Default answer delay for every platform (the `latency` query parameter still wins). */
  latencyMs?: number;
  /** JSON file holding an EmulatorConfig; the seven default platforms without limits when absent. */
  configFile?: string;
  /** Where the startup lines go (console.log by default). */
  log?: (line: string) => void;
}

export async function loadEmulatorConfig(file: string): Promise<EmulatorConfig> {
  const text = await readFile(file, 'utf8');
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new EmulatorConfigError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  try {
    return parseEmulatorConfig(input);
  } catch (error) {
    if (error instanceof EmulatorConfigError) throw new EmulatorConfigError(`${file}: ${error.message}`);
    throw error;
  }
}

/** `prism mock-api`: starts the emulator and says where it listens; the caller owns the process. */
export async function runMockApi(opts: MockApiOptions = {}): Promise<EmulatorHandle> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const config =
    opts.configFile === undefined ? defaultEmulatorConfig() : await loadEmulatorConfig(opts.configFile);
  if (opts.latencyMs !== undefined) config.latencyMs = opts.latencyMs;
  const startOpts: { host?: string; port?: number } = {};
  if (opts.host !== undefined) startOpts.host = opts.host;
  if (opts.port !== undefined) startOpts.port = opts.port;
  const handle = await startEmulator(config, startOpts);
  log(`prism mock-api listening on ${handle.url}`);
  log(
    `  platforms: ${Object.entries(config.platforms)
      .map(([name, p]) => `${name} (${p.style})`)
      .join(', ')}`,
  );
  log(`  limits: ${config.limits.length === 0 ? 'none' : config.limits.map(ruleName).join('; ')}`);
  log(`  try: curl '${handle.url}/meta/act_1/insights?pages=2&access_token=t'`);
  log(`  counters: ${handle.url}/__emulator/stats (POST /__emulator/reset, PUT /__emulator/config)`);
  return handle;
}
