import { BroadcastChannel } from 'node:worker_threads';
import { MemoryLedger, type LedgerOptions } from './memory-ledger.ts';

/** A pause or slowdown one shard learned, as the others hear it. */
type SignalNews =
  | { kind: 'pause'; key: string; until: number; reason: string }
  | { kind: 'slow'; key: string; until: number; intervalMs: number; reason: string };

/**
 * The in-memory ledger of one shard of a node (src/runtime/sharded-node.ts). Limits need nothing
 * more: each limit key lives on one shard (src/limits/shard-affinity.ts). Pauses and slowdowns do:
 * their scopes include the whole source and its accounts, which span shards, and "a pause holds on
 * every node" holds for every shard too. A shard that learns one tells the other shards of its
 * node over a BroadcastChannel (between threads of one process: microseconds, as the KV watch
 * is between nodes), and they keep it as their own.
 *
 * A slowdown is one call per interval on a scope that every shard may call: each shard keeps it as
 * one call per `interval × shards`, so that the shards together keep the pace asked.
 */
export class SharedSignalsLedger extends MemoryLedger {
  private readonly channel: BroadcastChannel;
  private readonly shards: number;
  private readonly clock: () => number;

  /** `channelName`: the same for every shard of one node, and only for them. */
  constructor(options: LedgerOptions & { channelName: string; shards: number; now: () => number }) {
    super(options);
    this.shards = options.shards;
    this.clock = options.now;
    this.channel = new BroadcastChannel(options.channelName);
    this.channel.onmessage = (event: unknown) => {
      const news = (event as { data: SignalNews }).data;
      if (news.kind === 'pause') void super.pause(news.key, news.until, news.reason);
      else void super.slow(news.key, news.until, news.intervalMs, news.reason, this.clock());
    };
    // A shard that has nothing else to do must still be able to exit.
    this.channel.unref();
  }

  override async pause(key: string, until: number, reason: string): Promise<void> {
    await super.pause(key, until, reason);
    this.channel.postMessage({ kind: 'pause', key, until, reason } satisfies SignalNews);
  }

  override async slow(
    key: string,
    until: number,
    intervalMs: number,
    reason: string,
    now: number,
  ): Promise<void> {
    const shardInterval = intervalMs * this.shards;
    await super.slow(key, until, shardInterval, reason, now);
    this.channel.postMessage({
      kind: 'slow',
      key,
      until,
      intervalMs: shardInterval,
      reason,
    } satisfies SignalNews);
  }

  override async close(): Promise<void> {
    this.channel.close();
    await super.close();
  }
}
