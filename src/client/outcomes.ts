import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { DeadLetter, ResultEvent } from '../messages/result.ts';

export interface OutcomeSummary {
  expected: number;
  ok: number;
  deadLettered: number;
  missing: number;
  pages: number;
  bytes: number;
  seconds: number;
  dlqReasons: Map<string, number>;
}

/**
 * Listens to result events and dead letters (core subscriptions: start it before publishing)
 * and counts, for the expected job ids, how each ended. Counting is incremental: one event costs
 * the same with 100 jobs as with 100,000.
 */
export function watchOutcomes(nc: NatsConnection) {
  const started = Date.now();
  const early = new Map<string, ResultEvent | DeadLetter>();
  let pending: Set<string> | undefined;
  const summary: OutcomeSummary = {
    expected: 0,
    ok: 0,
    deadLettered: 0,
    missing: 0,
    pages: 0,
    bytes: 0,
    seconds: 0,
    dlqReasons: new Map(),
  };
  let onChange: (() => void) | undefined;

  const count = (id: string, outcome: ResultEvent | DeadLetter): void => {
    if (pending === undefined) {
      if (!early.has(id)) early.set(id, outcome);
      return;
    }
    if (!pending.delete(id)) return;
    if ('status' in outcome) {
      summary.ok++;
      summary.pages += outcome.pages;
      for (const o of outcome.objects) summary.bytes += o.bytes;
    } else {
      summary.deadLettered++;
      summary.dlqReasons.set(outcome.reason, (summary.dlqReasons.get(outcome.reason) ?? 0) + 1);
    }
    summary.missing = pending.size;
    onChange?.();
  };
  const subs: Subscription[] = [
    nc.subscribe('prism.results.>', {
      callback: (_e, msg) => {
        const event = msg.json<ResultEvent>();
        count(event.id, event);
      },
    }),
    nc.subscribe('prism.dlq.>', {
      callback: (_e, msg) => {
        const letter = msg.json<DeadLetter>();
        if (letter.id !== undefined) count(letter.id, letter);
      },
    }),
  ];
  const snapshot = (): OutcomeSummary => ({
    ...summary,
    seconds: (Date.now() - started) / 1000,
    dlqReasons: new Map(summary.dlqReasons),
  });
  return {
    snapshot,
    /** Waits until every id in `ids` has a result or a dead letter, or the timeout passes. */
    waitFor(
      ids: Set<string>,
      timeoutMs: number,
      progress?: (s: OutcomeSummary) => void,
    ): Promise<OutcomeSummary> {
      pending = new Set(ids);
      summary.expected = ids.size;
      summary.missing = ids.size;
      for (const [id, outcome] of early) count(id, outcome);
      early.clear();
      return new Promise((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          onChange = undefined;
          resolve(snapshot());
        };
        const timer = setTimeout(finish, timeoutMs);
        onChange = () => {
          progress?.(snapshot());
          if (summary.missing === 0) finish();
        };
        onChange();
      });
    },
    close(): void {
      for (const sub of subs) sub.unsubscribe();
    },
  };
}
