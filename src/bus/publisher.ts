import type { JetStreamClient } from '@nats-io/jetstream';
import type { DeadLetter, ResultEvent } from '../messages/result.ts';
import { DLQ_INVALID_SUBJECT, dlqSubject, resultSubject } from '../messages/subject.ts';

/** What the actors publish; behind an interface so the bus can be swapped. */
export interface EventPublisher {
  /** Resolves once JetStream stored the event (PubAck). */
  result(event: ResultEvent): Promise<void>;
  deadLetter(letter: DeadLetter): Promise<void>;
}

const encoder = new TextEncoder();

export class JetStreamPublisher implements EventPublisher {
  private readonly js: JetStreamClient;

  constructor(js: JetStreamClient) {
    this.js = js;
  }

  async result(event: ResultEvent): Promise<void> {
    // The msgID makes a duplicate (a redelivered job finishing twice) a no-op within the window.
    await this.js.publish(resultSubject(event), encoder.encode(JSON.stringify(event)), {
      msgID: `result:${event.id}`,
      timeout: 10_000,
    });
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    const subject =
      letter.source !== undefined && letter.api !== undefined && letter.account !== undefined
        ? dlqSubject({ source: letter.source, api: letter.api, account: letter.account })
        : DLQ_INVALID_SUBJECT;
    await this.js.publish(subject, encoder.encode(JSON.stringify(letter)), { timeout: 10_000 });
  }
}
