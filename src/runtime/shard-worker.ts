/**
 * One shard of a sharded node, in its own worker thread (src/runtime/sharded-node.ts starts it):
 * a whole node (startNode) but for pulling, with its own heap, NATS connection, actors, ledger,
 * HTTP client and storage. Its jobs come from the main thread (ShardIntake).
 *
 * Receives from the main thread: `jobs` (a JobBatch), `drain` (then exits). Sends: `ready`, `settled`
 * (tickets), `lost` (its NATS connection closed for good; the thread then exits with 1).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { NatsSecurity } from '../bus/nats-connection.ts';
import { ShardIntake, type JobBatch } from '../bus/shard-intake.ts';
import type { PrismConfig } from '../config/schema.ts';
import { SharedSignalsLedger } from '../limits/shared-signals.ts';
import { ledgerOptionsFor, startNode } from '../system.ts';
import { preciseNow } from '../actors/services.ts';
import { createLogger } from './logger.ts';

/** What the main thread gives a shard (structured clone: plain data only). */
export interface ShardSetup {
  config: PrismConfig;
  natsUrl: string;
  natsSecurity: NatsSecurity | undefined;
  storage: string;
  /** The node's name: `{node}` in limit keys and results; the shard answers status as `name#index`. */
  name: string;
  index: number;
  shards: number;
  concurrency: number;
  /** The BroadcastChannel the node's shards share pauses and slowdowns on. */
  signalsChannel: string;
  /** pino level of the shard's log (the node's). */
  logLevel: string;
}

export type ToShard = JobBatch | { type: 'drain' };
export type FromShard =
  { type: 'ready' } | { type: 'settled'; tickets: number[] } | { type: 'lost'; reason: string };

const port = parentPort;
if (port === null) throw new Error('shard-worker.ts runs as a worker thread of a sharded node');
const setup = workerData as ShardSetup;
const { config } = setup;
const statusName = `${setup.name}#${setup.index}`;
const send = (message: FromShard): void => port.postMessage(message);

let intake: ShardIntake | undefined;
const node = await startNode({
  config,
  natsUrl: setup.natsUrl,
  ...(setup.natsSecurity !== undefined ? { natsSecurity: setup.natsSecurity } : {}),
  storage: setup.storage,
  name: setup.name,
  statusName,
  concurrency: setup.concurrency,
  log: createLogger(statusName, setup.logLevel),
  ...(config.node.ledger === 'memory'
    ? {
        ledger: new SharedSignalsLedger({
          ...ledgerOptionsFor(config),
          channelName: setup.signalsChannel,
          shards: setup.shards,
          now: preciseNow,
        }),
      }
    : {}),
  intake: (deliver, nc) =>
    (intake = new ShardIntake(nc, deliver, (tickets) => send({ type: 'settled', tickets }))),
});

void node.connectionLost.then((error) => {
  send({ type: 'lost', reason: error.message });
  process.exit(1);
});
port.on('message', (message: ToShard) => {
  if (message.type === 'jobs') intake?.receive(message);
  else if (message.type === 'drain')
    void node.drain().then(
      // The main thread waits for the thread to exit.
      () => process.exit(0),
      () => process.exit(1),
    );
});
send({ type: 'ready' });
