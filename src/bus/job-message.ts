/**
 * A job as it sits in JetStream: the durable copy. Actors pass this handle around; the job is
 * done only when someone acks it (after its objects and result are stored) or dead-letters it.
 */
export interface JobMessage {
  readonly subject: string;
  /**
   * The payload: its text when it is valid UTF-8 (what a node keeps of a held job: the string
   * costs about half of what a copy of the bytes does, and is the text the job is parsed from),
   * else its bytes.
   */
  readonly data: string | Uint8Array;
  /** The producer's `Nats-Msg-Id` header, when set. */
  readonly msgId: string | undefined;
  /** How often JetStream has delivered it (1 on the first delivery). */
  readonly deliveryCount: number;
  readonly streamSeq: number;
  /** Removes it from JetStream for good; resolves once the server confirmed. */
  ack(): Promise<void>;
  /** Gives it back to JetStream for another node (or this one) after `delayMs`. */
  nak(delayMs: number): void;
  /** Tells JetStream it is still being worked on, so ack_wait does not redeliver it. */
  working(): void;
  /** Whether ack or nak has been called. */
  readonly settled: boolean;
}
