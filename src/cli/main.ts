#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/load.ts';
import { runDemo } from './demo-command.ts';
import { runMockApiCommand } from './mock-api-command.ts';
import { runNode } from './node-command.ts';
import { runPublish } from './publish-command.ts';
import { runStatus } from './status-command.ts';

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const program = new Command('prism')
  .description('Collects ad-platform API data within every call limit and lands it in S3')
  .showHelpAfterError();

program
  .command('node')
  .description('run a node until SIGINT/SIGTERM, then drain and exit 0')
  .option('--config <file>', 'config file (JSON); env PRISM_CONFIG')
  .option('--storage <url>', 'file:./data or s3://bucket/prefix; env PRISM_STORAGE')
  .option('--nats <url>', 'NATS server(s), comma-separated; env NATS_URL')
  .option('--nats-creds <file>', 'NATS credentials file; env NATS_CREDS (README: NATS security)')
  .option('--name <id>', 'node name; env PRISM_NODE_NAME')
  .option('--concurrency <n>', 'requests in flight on this node', positiveInt)
  .option('--shards <n>', 'worker threads the node splits its keys over (node.shards)', positiveInt)
  .action(runNode);

program
  .command('publish [file]')
  .description('publish jobs from an NDJSON file (or stdin)')
  .option('--nats <url>', 'NATS server; env NATS_URL')
  .option('--nats-creds <file>', 'NATS credentials file; env NATS_CREDS')
  .option('--wait', 'wait for every job to end and print a summary')
  .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt)
  .option('--no-progress', 'no progress bar')
  .action(async (file: string | undefined, flags) => {
    process.exitCode = await runPublish(file, flags);
  });

program
  .command('status')
  .description("print every running node's figures")
  .option('--nats <url>', 'NATS server; env NATS_URL')
  .option('--nats-creds <file>', 'NATS credentials file; env NATS_CREDS')
  .option('--json', 'print JSON')
  .option('--wait <ms>', 'how long to collect answers', positiveInt)
  .action(async (flags) => {
    process.exitCode = await runStatus(flags);
  });

program
  .command('demo')
  .description('the main job on embedded defaults: emulator + node + a batch of jobs, then a summary')
  .option('--storage <url>', 'where objects land (default file:./data)')
  .option(
    '--nats <url>',
    'NATS server (default: NATS_URL, else localhost:4222, else a nats-server started for the demo)',
  )
  .option('--nats-creds <file>', 'NATS credentials file; env NATS_CREDS')
  .option('--accounts <n>', 'accounts per platform', positiveInt)
  .option('--jobs-per-account <n>', 'jobs (report dates) per account', positiveInt)
  .option('--concurrency <n>', 'requests in flight', positiveInt)
  .action(async (flags) => {
    process.exitCode = await runDemo(flags);
  });

program
  .command('mock-api')
  .description('the ad-platform emulator alone (latency, limits with 429, pagination, faults)')
  .option('--port <n>', 'port (default: a free one)', positiveInt)
  .option('--host <host>', 'address to bind (default 127.0.0.1)')
  .option('--latency <ms>', 'answer delay', positiveInt)
  .option('--config <file>', 'emulator config (JSON)')
  .action(runMockApiCommand);

program.parseAsync().catch((error: unknown) => {
  const name = (error as Error).name;
  if (error instanceof ConfigError || name === 'NatsServerMissing' || name === 'NatsConnectError') {
    console.error(`prism: ${(error as Error).message}`);
  } else {
    console.error('prism:', error);
  }
  process.exit(1);
});
