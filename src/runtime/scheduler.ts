/**
 * One timer for the whole node. A throttle actor that must wait asks for a wake-up here instead
 * of holding its own `setTimeout`: 100,000 waiting keys cost one heap, not 100,000 timers.
 * (Node's timers also wrap around to ~0 for delays of ~24.8 days or more; the heap does not.)
 */
export type Cancel = () => void;

interface Entry {
  at: number;
  seq: number;
  run: () => void;
  cancelled: boolean;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs `run` at time `at` (ms since the epoch, same clock as `now`). */
  at(at: number, run: () => void): Cancel {
    const entry: Entry = { at, seq: this.seq++, run, cancelled: false };
    this.push(entry);
    if (at < this.timerAt) this.arm();
    return () => {
      entry.cancelled = true;
    };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.heap = [];
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const first = this.heap[0];
    if (first === undefined) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, first.at - this.now()));
    this.timerAt = first.at;
    this.timer = setTimeout(() => this.fire(), delay);
    // Waiting keys alone must not keep a stopping process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    for (let top = this.heap[0]; top !== undefined && top.at <= now; top = this.heap[0]) {
      this.pop();
      if (!top.cancelled) top.run();
    }
    this.arm();
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Entry, heap[parent] as Entry)) break;
      swap(heap, i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l] as Entry, heap[m] as Entry)) m = l;
      if (r < heap.length && before(heap[r] as Entry, heap[m] as Entry)) m = r;
      if (m === i) break;
      swap(heap, i, m);
      i = m;
    }
  }
}

/** Not `[a, b] = [b, a]`: that allocates an array per swap, ~13 swaps per wake-up at 10k keys. */
function swap(heap: Entry[], i: number, j: number): void {
  const entry = heap[i] as Entry;
  heap[i] = heap[j] as Entry;
  heap[j] = entry;
}

const before = (a: Entry, b: Entry): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);
