import { ConfigError } from '../config/load.ts';
import { productionConfig } from '../config/platforms.ts';
import { MAX_SHARDS } from '../config/schema.ts';
import { createLogger } from '../runtime/logger.ts';
import { missingNodeFlags, NODE_FLAGS } from '../runtime/node-flags.ts';
import { startShardedNode } from '../runtime/sharded-node.ts';
import { startNode } from '../system.ts';
import { loadConfig, natsSettings, storageUrl, type CommonFlags } from './settings.ts';

export interface NodeFlags extends CommonFlags {
  name?: string;
  concurrency?: number;
  shards?: number;
}

/** `prism node`: runs until SIGINT/SIGTERM, then drains and exits 0; a second signal exits at once. */
export async function runNode(flags: NodeFlags): Promise<void> {
  const config = loadConfig(flags, productionConfig);
  const name = flags.name ?? process.env.PRISM_NODE_NAME ?? config.node.name;
  const log = createLogger(name ?? `node-${process.pid}`);
  const missing = missingNodeFlags();
  if (missing.length > 0)
    log.warn(
      { missing, recommended: NODE_FLAGS },
      'node started without its V8 flags (bin/prism.js passes them): expect longer GC pauses at high call rates',
    );
  const nats = natsSettings(flags, config);
  if (flags.shards !== undefined) {
    if (flags.shards > MAX_SHARDS) throw new ConfigError(`--shards must be at most ${MAX_SHARDS}`);
    config.node.shards = flags.shards;
  }
  const options = {
    config,
    natsUrl: nats.url,
    natsSecurity: nats.security,
    storage: storageUrl(flags, config),
    log,
    ...(name !== undefined ? { name } : {}),
    ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
  };
  const node = config.node.shards > 1 ? await startShardedNode(options) : await startNode(options);
  void node.connectionLost.then(() => {
    log.error(
      'exiting: the NATS connection is gone for good; held jobs return to other nodes after ack_wait',
    );
    log.flush?.();
    process.exit(1);
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'signal received: draining');
    node.drain().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
