/**
 * Jobs whose last call is done and that are leaving the node: result published, message acked,
 * checkpoint cleared (or nak'd, or dead-lettered). A collector hands a job over here and takes
 * its next call at once, instead of waiting through those NATS round trips while calls with
 * granted slots wait for it. (How much that saves depends on NATS: with NATS stopped a collector
 * went on calling, test/integration/settling.test.ts; in fault test (a), where a collector's turn
 * is 3–4 times its call, the time goes to storing the page and the event loop, and the turn did
 * not change measurably.) The JetStream message stays held until it is settled, so a drain still
 * waits for every job here.
 *
 * At most `limit` jobs settle at once: when NATS falls behind, collectors wait for room rather
 * than spend more of the platforms' quotas on calls whose results cannot leave yet.
 */
export class Settling {
  readonly limit: number;
  private pending = 0;
  private readonly waitingForRoom: Array<() => void> = [];
  private readonly waitingForIdle: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new Error(`the settling limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Jobs settling now. */
  get size(): number {
    return this.pending;
  }

  /**
   * Starts `settle` once fewer than `limit` jobs are settling, and resolves then (not when it is
   * done). `settle` must handle its own failures: a rejection is only swallowed here.
   */
  async admit(settle: () => Promise<void>): Promise<void> {
    while (this.pending >= this.limit)
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    this.pending++;
    settle()
      .catch(() => undefined)
      .finally(() => this.settled());
  }

  /** Resolves when no job is settling. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.waitingForIdle.push(resolve));
  }

  private settled(): void {
    this.pending--;
    // One place came free: one waiter takes it (it checks again, so the limit always holds).
    this.waitingForRoom.shift()?.();
    if (this.pending === 0) for (const resolve of this.waitingForIdle.splice(0)) resolve();
  }
}
