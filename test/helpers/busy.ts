import { preciseNow } from '../../src/actors/services.ts';

/** Blocks this thread, as a busy node's event loop does to a call that is ready to leave. */
export function busyFor(ms: number): void {
  const until = preciseNow() + ms;
  while (preciseNow() < until) {
    // spin
  }
}
