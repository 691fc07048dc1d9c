import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import cliProgress from 'cli-progress';
import pino from 'pino';
import { connectNats } from '../bus/nats-connection.ts';
import { publishJob, type JobInput } from '../client/jobs.ts';
import { watchOutcomes, type OutcomeSummary } from '../client/outcomes.ts';
import { parseConfig } from '../config/load.ts';
import { emulatorSources } from '../config/platforms.ts';
import { spawnEmulator } from '../emulator/process.ts';
import { createLogger } from '../runtime/logger.ts';
import { isListening, startLocalNats, type LocalNats } from '../runtime/local-nats.ts';
import { startNode } from '../system.ts';
import { natsSettings, storageUrl, type CommonFlags } from './settings.ts';

export interface DemoFlags extends CommonFlags {
  accounts?: number;
  jobsPerAccount?: number;
  concurrency?: number;
}

const PLATFORMS: Array<{ source: string; api: string; pages: number }> = [
  { source: 'meta', api: 'insights', pages: 3 },
  { source: 'google', api: 'report', pages: 2 },
  { source: 'tiktok', api: 'report', pages: 2 },
  { source: 'naver', api: 'report', pages: 1 },
  { source: 'kakao', api: 'report', pages: 1 },
  { source: 'appsflyer', api: 'report', pages: 1 },
  { source: 'adjust', api: 'report', pages: 2 },
];

/** The same limit at the emulator (which counts violations) and in Prism's config. */
const DEMO_LIMIT = { perAccount: 2, perMs: 1_000 };

/**
 * `prism demo`: the main job on embedded defaults. Starts the ad-platform emulator (strict
 * per-account limits), finds or starts NATS, runs a node with file storage, publishes a batch
 * of jobs for many accounts (plus two hostile ones), shows progress, and prints a summary.
 */
export async function runDemo(flags: DemoFlags): Promise<number> {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const started = Date.now();
  // In a process of its own, as a real platform is: an emulator in the node's process would
  // time arrivals late whenever the node is busy, and count violations no platform would see.
  const emulator = await spawnEmulator({
    latencyMs: 40,
    limits: [{ scope: 'account', limit: DEMO_LIMIT.perAccount, perMs: DEMO_LIMIT.perMs }],
  });
  out(
    `emulator   ${emulator.url} (every account: at most ${DEMO_LIMIT.perAccount} calls per ${DEMO_LIMIT.perMs} ms, or it counts a violation)`,
  );

  let localNats: LocalNats | undefined;
  let url = flags.nats ?? process.env.NATS_URL;
  if (url === undefined) {
    if (await isListening('127.0.0.1', 4222)) url = 'nats://127.0.0.1:4222';
    else {
      localNats = await startLocalNats();
      url = localNats.url;
    }
  }
  out(`nats       ${url}${localNats !== undefined ? ' (started for this demo)' : ''}`);
  // Credentials and TLS from flags and the environment, for a server of the user's own.
  const natsSecurity = localNats === undefined ? natsSettings(flags).security : undefined;

  const config = parseConfig(
    {
      node: { name: 'demo-node', metricsInterval: '5s', concurrency: flags.concurrency ?? 256 },
      sources: emulatorSources(emulator.host, DEMO_LIMIT),
    },
    'demo config',
  );
  mkdirSync('.prism', { recursive: true });
  const logFile = '.prism/demo-node.log';
  const log = createLogger(
    'demo-node',
    'info',
    pino.destination({ dest: logFile, sync: false, mkdir: true }),
  );
  const storage = storageUrl(flags, config);
  const node = await startNode({ config, natsUrl: url, natsSecurity, storage, log, name: 'demo-node' });
  out(`node       demo-node, storage ${node.services.storage.location}, log ${logFile}`);

  const nc = await connectNats({ url, name: 'prism-demo', security: natsSecurity });
  const js = jetstream(nc);
  const watcher = watchOutcomes(nc);
  const run = randomBytes(4).toString('hex');
  const jobs = demoJobs(emulator.url, run, flags.accounts ?? 20, flags.jobsPerAccount ?? 3);
  const ids = new Set<string>();
  for (const job of jobs) ids.add(await publishJob(js, job));
  out(
    `published  ${ids.size} jobs for ${(flags.accounts ?? 20) * PLATFORMS.length} accounts on ${PLATFORMS.length} platforms (2 of them hostile)`,
  );

  const bar = process.stdout.isTTY
    ? new cliProgress.SingleBar(
        {
          format:
            'progress   |{bar}| {value}/{total} jobs  {calls} calls  {violations} violations  {eta_formatted}',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(ids.size, 0, { calls: 0, violations: 0 });
  let lastLine = 0;
  // The emulator's figures, fetched every half second (it is another process).
  let stats = await emulator.stats();
  const progress = (s: OutcomeSummary): void => {
    bar?.update(s.ok + s.deadLettered, { calls: stats.calls, violations: stats.violations });
    if (bar === undefined && Date.now() - lastLine > 2_000) {
      lastLine = Date.now();
      out(
        `progress   ${s.ok + s.deadLettered}/${ids.size} jobs, ${stats.calls} calls, ${stats.violations} violations`,
      );
    }
  };
  const ticker = setInterval(() => {
    void emulator.stats().then(
      (latest) => {
        stats = latest;
        progress(watcher.snapshot());
      },
      () => progress(watcher.snapshot()),
    );
  }, 500);
  const summary = await watcher.waitFor(ids, 300_000, progress);
  clearInterval(ticker);
  bar?.stop();
  stats = await emulator.stats();
  const seconds = (Date.now() - started) / 1000;

  out('');
  out('summary');
  out(
    `  jobs            ${summary.expected}: ${summary.ok} stored, ${summary.deadLettered} dead-lettered, ${summary.missing} missing`,
  );
  out(`  api calls       ${stats.calls} (${stats.ok} answered with data, ${stats.throttled} throttled)`);
  out(
    `  limits kept     ${stats.violations === 0 ? 'yes' : 'NO'}: the emulator counted ${stats.violations} violations`,
  );
  out(
    `  objects written ${summary.pages} pages, ${summary.bytes} bytes under ${node.services.storage.location}`,
  );
  for (const [reason, count] of summary.dlqReasons) out(`  dead letter     ${count} × ${reason}`);
  out(`  time            ${seconds.toFixed(1)} s`);

  watcher.close();
  await nc.drain();
  await node.drain();
  await emulator.close();
  await localNats?.stop();
  return stats.violations === 0 && summary.missing === 0 ? 0 : 1;
}

function demoJobs(emulatorUrl: string, run: string, accounts: number, perAccount: number): JobInput[] {
  const jobs: JobInput[] = [];
  for (let d = 0; d < perAccount; d++) {
    const date = new Date(Date.UTC(2026, 10, 22 - d)).toISOString().slice(0, 10);
    for (const { source, api, pages } of PLATFORMS) {
      for (let a = 1; a <= accounts; a++) {
        const account = source === 'meta' ? `act_${a}` : `${source}-${a}`;
        jobs.push({
          id: `demo-${run}-${source}-${account}-${date}`,
          source,
          api,
          account,
          request: {
            url: `${emulatorUrl}/${source}/${account}/${api}`,
            query: { date, pages: String(pages), rows: '25' },
          },
          meta: { date },
        });
      }
    }
  }
  // Two jobs a careless script might send: both must end in the DLQ with a reason, not crash anything.
  jobs.push({
    id: `demo-${run}-hostile-host`,
    source: 'meta',
    api: 'insights',
    account: 'act_1',
    request: { url: 'http://169.254.169.254/latest/meta-data/' },
  });
  jobs.push({
    id: `demo-${run}-hostile-secret`,
    source: 'tiktok',
    api: 'report',
    account: 'tiktok-1',
    request: { url: `${emulatorUrl}/tiktok/tiktok-1/report`, headers: { 'Access-Token': 'plain-secret' } },
  });
  return jobs;
}
