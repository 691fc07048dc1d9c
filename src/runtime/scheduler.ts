/**
 * One timer for the whole node. A throttle actor that must wait asks for a wake-up here instead
 * of holding its own `setTimeout`: 100,000 waiting keys cost one heap, not 100,000 timers.
 * (Node's timers also wrap around to ~0 for delays of ~24.8 days or more; the heap does not.)
 *
 * The heap is kept in parallel arrays, not one object per wake-up: at 100,000 keys a node asks
 * for 100,000 wake-ups a second, each living about a second, just long enough for the garbage
 * collector to promote it to the old generation and mark it there (bench/throttle). A wake-up
 * runs `run(arg)`: callers pass one shared function and their own argument (a throttle passes
 * its actor ref), so no closure is made per wake-up either.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  /** Wake-up times; `seqs` keeps wake-ups of the same time in the order they were asked. */
  private ats = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private runs: Array<(arg: never) => void> = [];
  private args: unknown[] = [];
  private count = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  get size(): number {
    return this.count;
  }

  /** Runs `run(arg)` at time `at` (ms since the epoch, same clock as `now`), never before. */
  at<T>(at: number, run: (arg: T) => void, arg: T): void {
    if (this.stopped) return;
    this.push(at, run as (arg: never) => void, arg);
    if (at < this.timerAt) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.count = 0;
    this.runs = [];
    this.args = [];
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.count === 0) return;
    const first = this.ats[0] as number;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, first - this.now()));
    this.timerAt = first;
    this.timer = setTimeout(() => this.fire(), delay);
    // Waiting keys alone must not keep a stopping process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    while (this.count > 0 && (this.ats[0] as number) <= now && !this.stopped) {
      const run = this.runs[0] as (arg: unknown) => void;
      const arg = this.args[0];
      this.pop();
      run(arg);
    }
    this.arm();
  }

  private push(at: number, run: (arg: never) => void, arg: unknown): void {
    if (this.count === this.ats.length) this.grow();
    const seq = this.seq++;
    // Sift up: move parents down until the new entry's place is found, then write it once.
    let i = this.count++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(at, seq, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.put(i, at, seq, run, arg);
  }

  private pop(): void {
    const last = --this.count;
    const at = this.ats[last] as number;
    const seq = this.seqs[last] as number;
    const run = this.runs[last] as (arg: never) => void;
    const arg = this.args[last];
    // Drop the references the popped slot held (the array keeps its length for reuse).
    this.runs[last] = noop;
    this.args[last] = undefined;
    if (last === 0) return;
    // Sift the last entry down from the root.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const child = r < last && this.lessThan(r, l) ? r : l;
      if (!this.lessAt(child, at, seq)) break;
      this.move(child, i);
      i = child;
    }
    this.put(i, at, seq, run, arg);
  }

  /** Whether (at, seq) comes before the entry at index j. */
  private before(at: number, seq: number, j: number): boolean {
    const other = this.ats[j] as number;
    return at < other || (at === other && seq < (this.seqs[j] as number));
  }

  /** Whether the entry at index j comes before (at, seq). */
  private lessAt(j: number, at: number, seq: number): boolean {
    const mine = this.ats[j] as number;
    return mine < at || (mine === at && (this.seqs[j] as number) < seq);
  }

  private lessThan(i: number, j: number): boolean {
    return this.lessAt(i, this.ats[j] as number, this.seqs[j] as number);
  }

  private move(from: number, to: number): void {
    this.ats[to] = this.ats[from] as number;
    this.seqs[to] = this.seqs[from] as number;
    this.runs[to] = this.runs[from] as (arg: never) => void;
    this.args[to] = this.args[from];
  }

  private put(i: number, at: number, seq: number, run: (arg: never) => void, arg: unknown): void {
    this.ats[i] = at;
    this.seqs[i] = seq;
    this.runs[i] = run;
    this.args[i] = arg;
  }

  private grow(): void {
    const ats = new Float64Array(this.ats.length * 2);
    ats.set(this.ats);
    this.ats = ats;
    const seqs = new Float64Array(this.seqs.length * 2);
    seqs.set(this.seqs);
    this.seqs = seqs;
  }
}

const noop = (): void => {};
