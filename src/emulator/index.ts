/** The ad-platform emulator's public surface (`prism mock-api`, tests, demo, benchmarks). */
export { startEmulator } from './server.ts';
export type { StartEmulatorOptions } from './server.ts';
export { runMockApi, loadEmulatorConfig } from './cli.ts';
export type { MockApiOptions } from './cli.ts';
export {
  defaultEmulatorConfig,
  parseEmulatorConfig,
  EmulatorConfigError,
  ruleName,
  styleOf,
} from './config.ts';
export { queryKey, ruleKey, scopeKey } from './limit-book.ts';
export { EMULATOR_STYLES, LIMIT_SCOPES } from './types.ts';
export type {
  CallScope,
  ConcurrencyShape,
  DailyShape,
  EmulatorConfig,
  EmulatorHandle,
  EmulatorStats,
  EmulatorStyle,
  KeyStats,
  LimitRule,
  LimitScope,
  PlatformConfig,
  RuleShape,
  RuleStats,
  WindowShape,
} from './types.ts';
