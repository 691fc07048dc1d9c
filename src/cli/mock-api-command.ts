import { runMockApi } from '../emulator/cli.ts';

/** `prism mock-api`: the ad-platform emulator alone, until SIGINT/SIGTERM. */
export async function runMockApiCommand(flags: {
  port?: number;
  host?: string;
  latency?: number;
  config?: string;
}): Promise<void> {
  const handle = await runMockApi({
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(flags.latency !== undefined ? { latencyMs: flags.latency } : {}),
    ...(flags.config !== undefined ? { configFile: flags.config } : {}),
  });
  const stop = (): void => {
    void handle.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
