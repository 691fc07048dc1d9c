/** The ad-platform emulator's public surface (`prism mock-api`, tests, demo, benchmarks). */
export { startEmulator } from './server.ts';
export type { StartEmulatorOptions } from './server.ts';
export { runMockApi, loadEmulatorConfig } from './cli.ts';
export type { MockApiOptions } from './cli.ts';
export { defaultEmulatorConfig, parseEmulatorConfig, EmulatorConfigError, styleOf } from './config.ts';
export { scopeKey } from './limit-book.ts';
export { EMULATOR_STYLES, LIMIT_SCOPES } from './types.ts';
export type {
  EmulatorConfig,
  EmulatorHandle,
  EmulatorStats,
  EmulatorStyle,
  KeyStats,
  LimitRule,
  LimitScope,
  PlatformConfig,
  RuleStats,
} from './types.ts';
