import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { jetstream } from '@nats-io/jetstream';
import cliProgress from 'cli-progress';
import { connectNats } from '../bus/nats-connection.ts';
import { parseJobLine, publishJob } from '../client/jobs.ts';
import { watchOutcomes, type OutcomeSummary } from '../client/outcomes.ts';
import { natsSettings } from './settings.ts';

export interface PublishFlags {
  nats?: string;
  natsCreds?: string;
  wait?: boolean;
  timeout?: number;
  progress?: boolean;
}

/**
 * `prism publish [FILE]`: one job per NDJSON line (stdin when FILE is absent or `-`). A bad line
 * is reported with its number and skipped; the others are published. Exit code 1 if any was bad
 * or, with --wait, if any job ended in the DLQ or did not finish in time.
 */
export async function runPublish(file: string | undefined, flags: PublishFlags): Promise<number> {
  const nc = await connectNats({ ...natsSettings(flags), name: 'prism-publish' });
  const js = jetstream(nc);
  const input = file === undefined || file === '-' ? process.stdin : createReadStream(file);
  const ids = new Set<string>();
  const watcher = flags.wait ? watchOutcomes(nc) : undefined;
  const showBar = flags.progress ?? process.stderr.isTTY;
  const bar = showBar
    ? new cliProgress.SingleBar(
        { format: 'publish |{bar}| {value} jobs {bad} bad', stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(0, 0, { bad: 0 });
  let bad = 0;
  let lineNo = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    if (line.trim() === '') continue;
    const parsed = parseJobLine(line);
    if (!parsed.ok) {
      bad++;
      process.stderr.write(`\nline ${lineNo}: ${parsed.reason}\n`);
      continue;
    }
    try {
      ids.add(await publishJob(js, parsed.job));
    } catch (error) {
      bad++;
      process.stderr.write(`\nline ${lineNo}: publish failed: ${(error as Error).message}\n`);
      continue;
    }
    bar?.setTotal(ids.size);
    bar?.update(ids.size, { bad });
  }
  bar?.stop();
  process.stderr.write(`published ${ids.size} jobs${bad > 0 ? `, ${bad} lines rejected` : ''}\n`);
  let failed = bad > 0;
  if (watcher !== undefined) {
    const summary = await watcher.waitFor(
      ids,
      (flags.timeout ?? 600) * 1000,
      showBar ? progressPrinter(ids.size) : undefined,
    );
    printSummary(summary);
    failed ||= summary.deadLettered > 0 || summary.missing > 0;
    watcher.close();
  }
  await nc.drain();
  return failed ? 1 : 0;
}

function progressPrinter(total: number): (s: OutcomeSummary) => void {
  const bar = new cliProgress.SingleBar(
    { format: 'results |{bar}| {value}/{total} ok {ok} dlq {dlq}', stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { ok: 0, dlq: 0 });
  return (s) => {
    bar.update(s.ok + s.deadLettered, { ok: s.ok, dlq: s.deadLettered });
    if (s.ok + s.deadLettered >= total) bar.stop();
  };
}

function printSummary(s: OutcomeSummary): void {
  console.log(
    JSON.stringify(
      {
        jobs: s.expected,
        ok: s.ok,
        deadLettered: s.deadLettered,
        missing: s.missing,
        pages: s.pages,
        bytes: s.bytes,
        seconds: s.seconds,
      },
      null,
      2,
    ),
  );
  for (const [reason, count] of s.dlqReasons) console.log(`DLQ ${count} × ${reason}`);
}
