import { EMULATOR_STYLES, LIMIT_SCOPES } from './types.ts';
import type {
  EmulatorConfig,
  EmulatorStyle,
  LimitRule,
  LimitScope,
  PlatformConfig,
  RuleKeying,
  RuleShape,
} from './types.ts';

/** A config the emulator refuses; the message says which field and why (sent back with 400). */
export class EmulatorConfigError extends Error {
  override name = 'EmulatorConfigError';
}

/**
 * Keeps one key's ring (8 bytes per slot) bounded, whatever a config file says; `concurrent` has
 * the same bound so that no rule shape takes numbers a window would refuse.
 */
const MAX_LIMIT = 1_000_000;
const MAX_LATENCY_MS = 600_000;

/** The seven platforms Prism collects from, in their own styles, without limits. */
export function defaultEmulatorConfig(): EmulatorConfig {
  return {
    platforms: {
      meta: { style: 'meta' },
      google: { style: 'google' },
      tiktok: { style: 'tiktok' },
      naver: { style: 'naver' },
      kakao: { style: 'kakao' },
      appsflyer: { style: 'generic' },
      adjust: { style: 'generic' },
    },
    limits: [],
  };
}

export function styleOf(config: EmulatorConfig, platform: string): EmulatorStyle {
  return (
    (Object.hasOwn(config.platforms, platform) ? config.platforms[platform]?.style : undefined) ?? 'generic'
  );
}

/**
 * A rule's label in stats and logs when it has no `name`: where it counts, then its shape —
 * `account:meta/insights 2/1000ms`, `query:appsflyer app_id 24/utc-day`, `account:kakao concurrent 2`.
 */
export function ruleName(rule: LimitRule): string {
  if (rule.name !== undefined) return rule.name;
  const where =
    (rule.platform === undefined ? '' : `:${rule.platform}`) +
    (rule.report ? `/${rule.report}` : '') +
    (rule.scope === 'query' ? ` ${rule.param}` : '');
  let shape: string;
  if (rule.concurrent !== undefined) shape = `concurrent ${rule.concurrent}`;
  else if (rule.reset === 'utc-day') shape = `${rule.limit}/utc-day`;
  else shape = `${rule.limit}/${rule.perMs}ms`;
  return `${rule.scope}${where} ${shape}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new EmulatorConfigError(`${where}: unknown field "${key}"`);
  }
}

function optionalNumber(
  value: unknown,
  where: string,
  { min, max, integer }: { min: number; max: number; integer: boolean },
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new EmulatorConfigError(`${where} must be ${integer ? 'an integer' : 'a finite number'}`);
  }
  if (value < min || value > max) throw new EmulatorConfigError(`${where} must be between ${min} and ${max}`);
  return value;
}

function optionalName(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.includes('/')) {
    throw new EmulatorConfigError(`${where} must be a non-empty string without "/"`);
  }
  return value;
}

function parsePlatform(value: unknown, where: string): PlatformConfig {
  if (!isRecord(value)) throw new EmulatorConfigError(`${where} must be an object`);
  checkKeys(value, ['style', 'latencyMs', 'dailyQuota'], where);
  if (typeof value.style !== 'string' || !(EMULATOR_STYLES as readonly string[]).includes(value.style)) {
    throw new EmulatorConfigError(`${where}.style must be one of ${EMULATOR_STYLES.join(', ')}`);
  }
  const platform: PlatformConfig = { style: value.style as EmulatorStyle };
  const latencyMs = optionalNumber(value.latencyMs, `${where}.latencyMs`, {
    min: 0,
    max: MAX_LATENCY_MS,
    integer: false,
  });
  if (latencyMs !== undefined) platform.latencyMs = latencyMs;
  const dailyQuota = optionalNumber(value.dailyQuota, `${where}.dailyQuota`, {
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    integer: true,
  });
  if (dailyQuota !== undefined) platform.dailyQuota = dailyQuota;
  return platform;
}

const RULE_FIELDS = [
  'scope',
  'platform',
  'report',
  'param',
  'limit',
  'perMs',
  'reset',
  'concurrent',
  'code',
  'name',
] as const;

/** `scope`, and `param` which only (and always) goes with the `query` scope. */
function parseKeying(value: Record<string, unknown>, where: string): RuleKeying {
  if (typeof value.scope !== 'string' || !(LIMIT_SCOPES as readonly string[]).includes(value.scope)) {
    throw new EmulatorConfigError(`${where}.scope must be one of ${LIMIT_SCOPES.join(', ')}`);
  }
  const scope = value.scope as LimitScope;
  if (scope !== 'query') {
    if (value.param !== undefined) throw new EmulatorConfigError(`${where}.param is only for scope "query"`);
    return { scope };
  }
  if (value.param === undefined) {
    throw new EmulatorConfigError(`${where}.param is required for scope "query"`);
  }
  if (typeof value.param !== 'string' || value.param.length === 0 || value.param.length > 200) {
    throw new EmulatorConfigError(`${where}.param must be a query parameter name (1 to 200 characters)`);
  }
  return { scope, param: value.param };
}

/** `limit` + `perMs`, `limit` + `reset: "utc-day"`, or `concurrent` alone. */
function parseShape(value: Record<string, unknown>, where: string): RuleShape {
  if (value.concurrent !== undefined) {
    const concurrent = value.concurrent;
    if (
      typeof concurrent !== 'number' ||
      !Number.isInteger(concurrent) ||
      concurrent < 1 ||
      concurrent > MAX_LIMIT
    ) {
      throw new EmulatorConfigError(`${where}.concurrent must be an integer between 1 and ${MAX_LIMIT}`);
    }
    for (const field of ['limit', 'perMs', 'reset'] as const) {
      if (value[field] !== undefined) {
        throw new EmulatorConfigError(`${where}.${field} does not go with concurrent (a concurrency rule)`);
      }
    }
    return { concurrent };
  }
  if (value.reset !== undefined && value.reset !== 'utc-day') {
    throw new EmulatorConfigError(`${where}.reset must be "utc-day"`);
  }
  const daily = value.reset === 'utc-day';
  // A day count keeps one number per key whatever the limit; only windows keep a slot per call.
  const limit = optionalNumber(value.limit, `${where}.limit`, {
    min: 1,
    max: daily ? Number.MAX_SAFE_INTEGER : MAX_LIMIT,
    integer: true,
  });
  if (limit === undefined) {
    throw new EmulatorConfigError(`${where}.limit is required (or concurrent, for a concurrency rule)`);
  }
  if (daily) {
    if (value.perMs !== undefined) {
      throw new EmulatorConfigError(`${where}: give either perMs or reset "utc-day", not both`);
    }
    return { limit, reset: 'utc-day' };
  }
  const perMs = optionalNumber(value.perMs, `${where}.perMs`, {
    min: 0.001,
    max: 400 * 86_400_000,
    integer: false,
  });
  if (perMs === undefined) {
    throw new EmulatorConfigError(`${where}.perMs is required: give either perMs or reset "utc-day"`);
  }
  return { limit, perMs };
}

function parseRule(value: unknown, where: string): LimitRule {
  if (!isRecord(value)) throw new EmulatorConfigError(`${where} must be an object`);
  checkKeys(value, RULE_FIELDS, where);
  const rule: LimitRule = { ...parseKeying(value, where), ...parseShape(value, where) };
  const platform = optionalName(value.platform, `${where}.platform`);
  if (platform !== undefined) rule.platform = platform;
  const report = optionalName(value.report, `${where}.report`);
  if (report !== undefined) rule.report = report;
  const code = optionalNumber(value.code, `${where}.code`, {
    min: -1_000_000_000,
    max: 1_000_000_000,
    integer: true,
  });
  if (code !== undefined) rule.code = code;
  if (value.name !== undefined) {
    if (typeof value.name !== 'string' || value.name.length === 0) {
      throw new EmulatorConfigError(`${where}.name must be a non-empty string`);
    }
    rule.name = value.name;
  }
  return rule;
}

/**
 * Validates untrusted input (a config file, a `PUT /__emulator/config` body) and returns a fresh
 * copy. `platforms` may be left out (the seven defaults), `limits` too (none).
 */
export function parseEmulatorConfig(input: unknown): EmulatorConfig {
  if (!isRecord(input)) throw new EmulatorConfigError('config must be a JSON object');
  checkKeys(input, ['platforms', 'limits', 'latencyMs', 'dailyQuota', 'requireBearer'], 'config');
  let platforms: Record<string, PlatformConfig>;
  if (input.platforms === undefined) {
    platforms = defaultEmulatorConfig().platforms;
  } else {
    if (!isRecord(input.platforms)) throw new EmulatorConfigError('config.platforms must be an object');
    platforms = Object.create(null) as Record<string, PlatformConfig>;
    for (const [name, value] of Object.entries(input.platforms)) {
      optionalName(name, `config.platforms key "${name}"`);
      platforms[name] = parsePlatform(value, `config.platforms.${name}`);
    }
    // A plain object again so the config serialises and compares like any other.
    platforms = { ...platforms };
  }
  let limits: LimitRule[] = [];
  if (input.limits !== undefined) {
    if (!Array.isArray(input.limits)) throw new EmulatorConfigError('config.limits must be an array');
    limits = input.limits.map((rule: unknown, i) => parseRule(rule, `config.limits[${i}]`));
  }
  const config: EmulatorConfig = { platforms, limits };
  const latencyMs = optionalNumber(input.latencyMs, 'config.latencyMs', {
    min: 0,
    max: MAX_LATENCY_MS,
    integer: false,
  });
  if (latencyMs !== undefined) config.latencyMs = latencyMs;
  const dailyQuota = optionalNumber(input.dailyQuota, 'config.dailyQuota', {
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    integer: true,
  });
  if (dailyQuota !== undefined) config.dailyQuota = dailyQuota;
  if (input.requireBearer !== undefined) {
    if (typeof input.requireBearer !== 'string' || !/^[\x21-\x7e]+$/.test(input.requireBearer)) {
      throw new EmulatorConfigError('config.requireBearer must be a non-empty token of visible ASCII');
    }
    config.requireBearer = input.requireBearer;
  }
  return config;
}
