import { readFileSync } from 'node:fs';
import type { AuthConfig, PrismConfig } from './schema.ts';
import { ConfigError } from './load.ts';

/** A resolved credential: how to put it on a request. The secret never leaves this object. */
export interface Credential {
  apply(headers: Record<string, string>, url: URL): void;
  /** The secret itself, so logs and stored output can be checked for it. */
  readonly secret: string;
}

/**
 * Credentials named by jobs (`"auth": "meta-default"`), resolved on the node from environment
 * variables or files at start-up: a missing one is a start-up error, not a failed job later.
 */
export class CredentialStore {
  private readonly bySource = new Map<string, Map<string, Credential>>();
  /** Credentials that could not be resolved, with why (jobs naming them are dead-lettered). */
  readonly problems: string[] = [];

  /** `strict`: a credential that cannot be resolved is a start-up error. */
  constructor(config: PrismConfig, env: NodeJS.ProcessEnv = process.env, strict = false) {
    const problems = this.problems;
    for (const [sourceName, source] of Object.entries(config.sources)) {
      const creds = new Map<string, Credential>();
      for (const [name, auth] of Object.entries(source.auth)) {
        try {
          creds.set(name, resolve(auth, env));
        } catch (error) {
          problems.push(`sources.${sourceName}.auth.${name}: ${(error as Error).message}`);
        }
      }
      this.bySource.set(sourceName, creds);
    }
    if (strict && problems.length > 0)
      throw new ConfigError(`cannot resolve credentials:\n${problems.join('\n')}`);
  }

  get(source: string, name: string): Credential | undefined {
    return this.bySource.get(source)?.get(name);
  }

  /** Why a named credential is not available, or undefined when it is. */
  problem(source: string, name: string): string | undefined {
    if (this.get(source, name) !== undefined) return undefined;
    return (
      this.problems.find((p) => p.startsWith(`sources.${source}.auth.${name}:`)) ??
      `credential ${name} is not configured`
    );
  }

  /** Every secret value (for log redaction checks). */
  secrets(): string[] {
    return [...this.bySource.values()].flatMap((m) => [...m.values()].map((c) => c.secret));
  }
}

function readSecret(auth: AuthConfig, env: NodeJS.ProcessEnv): string {
  if (auth.tokenEnv !== undefined) {
    const value = env[auth.tokenEnv];
    if (value === undefined || value === '')
      throw new Error(`environment variable ${auth.tokenEnv} is not set`);
    return value.trim();
  }
  if (auth.tokenFile !== undefined) {
    try {
      return readFileSync(auth.tokenFile, 'utf8').trim();
    } catch (error) {
      throw new Error(`cannot read token file ${auth.tokenFile}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  throw new Error('set tokenEnv or tokenFile');
}

function resolve(auth: AuthConfig, env: NodeJS.ProcessEnv): Credential {
  const secret = readSecret(auth, env);
  if (/[\r\n]/.test(secret)) throw new Error('the token holds a line break');
  switch (auth.type) {
    case 'bearer':
      return { secret, apply: (headers) => void (headers.authorization = `Bearer ${secret}`) };
    case 'header':
      return { secret, apply: (headers) => void (headers[auth.header.toLowerCase()] = secret) };
    case 'query':
      return { secret, apply: (_headers, url) => url.searchParams.set(auth.param, secret) };
  }
}
