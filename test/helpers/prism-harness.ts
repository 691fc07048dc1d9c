import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { connectNats } from '../../src/bus/nats-connection.ts';
import { publishJob, type JobInput } from '../../src/client/jobs.ts';
import { parseConfig, type PrismConfigInput } from '../../src/config/load.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import { defaultEmulatorConfig } from '../../src/emulator/config.ts';
import type { EmulatorConfig, EmulatorHandle } from '../../src/emulator/types.ts';
import type { DeadLetter, ResultEvent } from '../../src/messages/result.ts';
import { startNode, type NodeOptions, type PrismNode } from '../../src/system.ts';
import { FileStorage } from '../../src/storage/file-storage.ts';
import { startNatsServer, type NatsServerHandle } from './nats-server.ts';

/** Log lines of a node kept in memory, so tests can read (and grep) them. */
export class MemoryLog {
  readonly lines: string[] = [];
  readonly stream = { write: (line: string) => void this.lines.push(line) };
  text(): string {
    return this.lines.join('');
  }
}

export interface Harness {
  nats: NatsServerHandle;
  emulator: EmulatorHandle;
  nc: NatsConnection;
  js: JetStreamClient;
  dataDir: string;
  storage: FileStorage;
  results: Map<string, ResultEvent>;
  /** Every result event received, duplicates included. */
  resultLog: ResultEvent[];
  dead: Map<string, DeadLetter>;
  deadLog: DeadLetter[];
  nodes: PrismNode[];
  logs: MemoryLog[];
  /** `127.0.0.1:<port>` of the emulator. */
  host: string;
  startNode(config: PrismConfigInput, extra?: Partial<NodeOptions>): Promise<PrismNode>;
  publish(job: JobInput): Promise<string>;
  /** Resolves when every id has a result or a dead letter (or rejects after timeoutMs). */
  waitFor(ids: Iterable<string>, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(emulatorConfig: Partial<EmulatorConfig> = {}): Promise<Harness> {
  const nats = await startNatsServer();
  const emulator = await startEmulator({ ...defaultEmulatorConfig(), ...emulatorConfig });
  const nc = await connectNats({ url: nats.url, name: 'test-client' });
  const js = jetstream(nc);
  const dataDir = await mkdtemp(join(tmpdir(), 'prism-data-'));
  const storage = new FileStorage(dataDir);
  const results = new Map<string, ResultEvent>();
  const resultLog: ResultEvent[] = [];
  const dead = new Map<string, DeadLetter>();
  const deadLog: DeadLetter[] = [];
  let changed: (() => void) | undefined;
  nc.subscribe('prism.results.>', {
    callback: (_e, msg) => {
      const event = msg.json<ResultEvent>();
      results.set(event.id, event);
      resultLog.push(event);
      changed?.();
    },
  });
  nc.subscribe('prism.dlq.>', {
    callback: (_e, msg) => {
      const letter = msg.json<DeadLetter>();
      dead.set(letter.id ?? `seq-${deadLog.length}`, letter);
      deadLog.push(letter);
      changed?.();
    },
  });
  await nc.flush();
  const nodes: PrismNode[] = [];
  const logs: MemoryLog[] = [];
  const harness: Harness = {
    nats,
    emulator,
    nc,
    js,
    dataDir,
    storage,
    results,
    resultLog,
    dead,
    deadLog,
    nodes,
    logs,
    host: `127.0.0.1:${emulator.port}`,
    async startNode(config, extra = {}) {
      const memoryLog = new MemoryLog();
      logs.push(memoryLog);
      const name = extra.name ?? `test-node-${nodes.length + 1}`;
      const node = await startNode({
        config: parseConfig(config),
        natsUrl: nats.url,
        storage,
        name,
        log: pino({ level: 'debug', base: { node: name } }, memoryLog.stream),
        ...extra,
      });
      nodes.push(node);
      return node;
    },
    publish: (job) => publishJob(js, job),
    waitFor(ids, timeoutMs = 30_000) {
      const wanted = [...ids];
      return new Promise((resolve, reject) => {
        const check = (): boolean => wanted.every((id) => results.has(id) || dead.has(id));
        if (check()) return resolve();
        const timer = setTimeout(() => {
          changed = undefined;
          const missing = wanted.filter((id) => !results.has(id) && !dead.has(id));
          reject(
            new Error(`timed out waiting for ${missing.length} jobs, e.g. ${missing.slice(0, 3).join(', ')}`),
          );
        }, timeoutMs);
        changed = () => {
          if (check()) {
            clearTimeout(timer);
            changed = undefined;
            resolve();
          }
        };
      });
    },
    async close() {
      await Promise.allSettled(nodes.map((n) => n.drain()));
      await nc.close().catch(() => undefined);
      await emulator.close();
      await nats.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Messages still waiting in the jobs consumer (not acked). */
export async function pendingJobs(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.info('PRISM_JOBS', 'prism-nodes');
  return info.num_pending + info.num_ack_pending;
}
