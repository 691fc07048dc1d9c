import type { PrismConfig, SourceConfig } from '../config/schema.ts';
import { parseJobSubject } from '../messages/subject.ts';

/**
 * Which shard of a node (a worker thread with its own heap, see src/runtime/sharded-node.ts) owns
 * a job. With the in-memory ledger each shard keeps its own windows, so every limit key must live
 * on exactly one shard: two jobs that share any limit key must land on the same shard.
 *
 * A limit key is its template filled with the job's values. Two jobs share a key of template T
 * only if they agree on every variable T names; so if a source's jobs are placed by the values of
 * the variables that ALL of its templates name, any two jobs sharing a key agree on those too, and
 * land together. For `{source}/{account}` alone that is the account (a source's accounts spread
 * over the shards); add `{source}` (Meta's 200 calls an hour per app) and it is the source alone
 * (all of Meta on one shard). `{node}` is the same for every job of a node and `{meta.…}` values are
 * not in the subject, so neither is used (placing by fewer values is coarser, never wrong).
 *
 * Keys of templates that start with `{source}/` (or are `{source}`) begin with the source's own
 * name, so no two sources share them. A template that starts otherwise (`{account}`, `{node}`,
 * text) may share keys across sources: every source with one is placed on shard 0.
 *
 * Pauses and slowdowns are not placed this way (every job's scopes include `{source}`): the shards
 * tell each other (src/limits/shared-signals.ts).
 */
export type Placement = { kind: 'first' } | { kind: 'by'; vars: ReadonlyArray<'api' | 'account'> };

const VARIABLE = /\{([a-z]+)(?:\.[A-Za-z0-9_]+)?\}/g;

/** How a source's jobs are placed (the same for all of them). */
export function placementOf(source: SourceConfig): Placement {
  const templates = [...source.limits.map((l) => l.key)];
  for (const api of Object.values(source.apis)) templates.push(...api.limits.map((l) => l.key));
  if (templates.some((t) => !(t === '{source}' || t.startsWith('{source}/')))) return { kind: 'first' };
  // No limit at all: no ledger key to keep together, so the whole key spreads.
  let shared: Set<string> = new Set(['api', 'account']);
  for (const template of templates) {
    const named = new Set([...template.matchAll(VARIABLE)].map((m) => m[1] as string));
    shared = new Set([...shared].filter((name) => named.has(name)));
  }
  return { kind: 'by', vars: (['api', 'account'] as const).filter((name) => shared.has(name)) };
}

const placements = new WeakMap<SourceConfig, Placement>();

/**
 * The shard (0 … shards−1) that owns the job published on `subject`. A subject that is not a job
 * subject, or names a source the config lacks, goes anywhere: its router dead-letters it.
 */
export function shardOf(subject: string, config: PrismConfig, shards: number): number {
  if (shards <= 1) return 0;
  let parts;
  try {
    parts = parseJobSubject(subject);
  } catch {
    return hash(subject) % shards;
  }
  const source = config.sources[parts.source];
  if (source === undefined) return hash(subject) % shards;
  let placement = placements.get(source);
  if (placement === undefined) placements.set(source, (placement = placementOf(source)));
  if (placement.kind === 'first') return 0;
  // Decoded values: two encodings of one account are one account.
  let text = parts.source;
  for (const name of placement.vars) text += `\u0000${parts[name]}`;
  return hash(text) % shards;
}

/** FNV-1a over UTF-16 code units: stable across processes and runs (unlike a Map's order). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
