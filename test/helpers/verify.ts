import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ResultEvent } from '../../src/messages/result.ts';
import type { ObjectStorage } from '../../src/storage/storage.ts';

/** Every result event stored in PRISM_RESULTS, read back from the stream (not from core subscribers). */
export async function storedResults(nc: NatsConnection): Promise<ResultEvent[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('PRISM_RESULTS');
  const last = info.state.last_seq;
  const events: ResultEvent[] = [];
  if (info.state.messages === 0) return events;
  const consumer = await jetstream(nc).consumers.get('PRISM_RESULTS');
  const messages = await consumer.consume();
  for await (const message of messages) {
    events.push(message.json<ResultEvent>());
    if (message.seq >= last) break;
  }
  return events;
}

export interface Accounting {
  jobs: number;
  stored: number;
  deadLettered: number;
  lost: number;
  /** Result events in the stream beyond one per job. */
  duplicateResults: number;
  /** Objects in storage that no result event lists, or listed twice. */
  strayObjects: number;
}

/** How a run ended for `ids`: each job stored once, or dead-lettered, or lost. */
export async function account(
  nc: NatsConnection,
  storage: ObjectStorage,
  ids: readonly string[],
  dead: ReadonlyMap<string, unknown>,
): Promise<Accounting> {
  const events = await storedResults(nc);
  const perId = new Map<string, number>();
  const listed = new Set<string>();
  for (const event of events) {
    perId.set(event.id, (perId.get(event.id) ?? 0) + 1);
    for (const object of event.objects) listed.add(object.key);
  }
  let stored = 0;
  let deadLettered = 0;
  let lost = 0;
  for (const id of ids) {
    if (perId.has(id)) stored++;
    else if (dead.has(id)) deadLettered++;
    else lost++;
  }
  const duplicateResults = [...perId.values()].reduce((sum, n) => sum + n - 1, 0);
  const keys = await storage.list('');
  const strayObjects = keys.filter((k) => !listed.has(k)).length;
  return { jobs: ids.length, stored, deadLettered, lost, duplicateResults, strayObjects };
}
