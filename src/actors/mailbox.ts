import Denque from 'denque';

/** What the actor runtime needs of an actor's queue of waiting messages (nact's own is a Denque). */
export interface MailQueue {
  readonly length: number;
  push(message: unknown): void;
  shift(): unknown;
  toArray(): unknown[];
}

/**
 * The messages an actor has not handled yet, oldest first. Most actors hold none, one or two at
 * a time (a key's throttle gets a call's end and its next job together), so the first two sit in
 * fields and only a burst spills into a deque. An actor gets its mailbox with its first queued
 * message, not when it is spawned: at 100,000 keys a Denque per actor was two objects and
 * ~110 B each, kept by idle keys too and marked by every full collection.
 */
export class Mailbox implements MailQueue {
  length = 0;
  private first: unknown = undefined;
  private second: unknown = undefined;
  /** The third message on, while there are more than two. */
  private rest: Denque<unknown> | undefined = undefined;

  push(message: unknown): void {
    if (this.length === 0) this.first = message;
    else if (this.length === 1) this.second = message;
    else (this.rest ??= new Denque<unknown>()).push(message);
    this.length++;
  }

  shift(): unknown {
    if (this.length === 0) return undefined;
    const message = this.first;
    this.first = this.second;
    this.second = this.length > 2 ? (this.rest as Denque<unknown>).shift() : undefined;
    this.length--;
    return message;
  }

  toArray(): unknown[] {
    const messages: unknown[] = [];
    if (this.length > 0) messages.push(this.first);
    if (this.length > 1) messages.push(this.second);
    if (this.length > 2) messages.push(...(this.rest as Denque<unknown>).toArray());
    return messages;
  }
}

/** The mailbox of an actor that has never queued a message: empty, and never written to. */
export const NO_MAIL: MailQueue = Object.freeze({
  length: 0,
  push(): void {
    throw new Error('NO_MAIL is shared by every actor without mail: give the actor a Mailbox first');
  },
  shift: (): undefined => undefined,
  toArray: (): unknown[] => [],
});
