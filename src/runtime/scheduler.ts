/**
 * One timer for the whole node. A throttle actor that must wait asks for a wake-up here instead
 * of holding its own `setTimeout`: 100,000 waiting keys cost one wheel, not 100,000 timers.
 * (Node's timers also wrap around to ~0 for delays of ~24.8 days or more; this does not.)
 *
 * Wake-ups within `WHEEL_MS` of the wheel's position sit in a timing wheel: one slot per
 * millisecond, each slot a list kept in time order (wake-ups mostly arrive in order, so inserting
 * from the end is O(1)). Asking and running are then O(1); a binary heap of 100,000 wake-ups cost
 * ~11% of a node's CPU at 30,000 keys in its sift-down alone (cache misses over four arrays,
 * bench/throttle with perf). Wake-ups further out (a passivation in an hour, a pause until
 * midnight) wait in a heap and move into the wheel as it comes near them.
 *
 * Wake-ups are entries of one pool of parallel arrays (`WakePool`), not one object each: at
 * 100,000 keys a node asks for 100,000 wake-ups a second, each living about a second, just long
 * enough for the garbage collector to promote it to the old generation and mark it there. A slot
 * links its entries through the pool, so the pool holds as many entries as wake-ups are pending
 * (arrays per slot, each kept at its own peak, held eight times that: 806,000 entries, ~20 MB,
 * for 100,000 pending). A wake-up runs `run(arg)`: callers pass one shared function and their
 * own argument (a throttle passes its actor ref), so no closure is made per wake-up either.
 * Wake-ups run in time order, those of the same time in the order they were asked, and never
 * before their time.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Milliseconds the wheel covers (a power of two): a key's window of 1 s plus margin fits. */
const WHEEL_MS = 4_096;
const WHEEL_MASK = WHEEL_MS - 1;
/** No entry (end of a list, empty slot). */
const NONE = -1;

type Run = (arg: never) => void;

/**
 * Wake-up entries in parallel arrays, linked both ways into lists, with a free list of the
 * entries not in use (linked through `next`). Grows by doubling; never shrinks.
 */
class WakePool {
  ats = new Float64Array(1_024);
  next = new Int32Array(1_024);
  prev = new Int32Array(1_024);
  runs: Run[] = [];
  args: unknown[] = [];
  private free = NONE;
  private used = 0;

  take(at: number, run: Run, arg: unknown): number {
    let entry = this.free;
    if (entry !== NONE) this.free = this.next[entry] as number;
    else {
      entry = this.used++;
      if (entry === this.ats.length) this.grow();
    }
    this.ats[entry] = at;
    this.runs[entry] = run;
    this.args[entry] = arg;
    return entry;
  }

  /** Returns an entry, dropping what it referenced. */
  release(entry: number): void {
    this.runs[entry] = noop;
    this.args[entry] = undefined;
    this.next[entry] = this.free;
    this.free = entry;
  }

  clear(): void {
    this.runs = [];
    this.args = [];
    this.free = NONE;
    this.used = 0;
  }

  private grow(): void {
    this.ats = doubled(this.ats);
    this.next = doubled(this.next);
    this.prev = doubled(this.prev);
  }
}

export class Scheduler {
  /**
   * Slot `ms & WHEEL_MASK` lists the wake-ups of millisecond `ms`, for ms in [cursor, cursor +
   * WHEEL_MS): its first and last entries in the pool (NONE: empty).
   */
  private readonly firsts = new Int32Array(WHEEL_MS).fill(NONE);
  private readonly lasts = new Int32Array(WHEEL_MS).fill(NONE);
  private readonly pool = new WakePool();
  /** The earliest millisecond the wheel may still hold wake-ups of. */
  private cursor = 0;
  private inWheel = 0;
  private readonly far = new WakeHeap();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  /** Running due wake-ups: the wheel's position is the millisecond being run. */
  private firing = false;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  get size(): number {
    return this.inWheel + this.far.size;
  }

  /** Wake-up entries the wheel's pool has room for: about its peak of pending wake-ups. */
  get capacity(): number {
    return this.pool.ats.length;
  }

  /** Runs `run(arg)` at time `at` (ms since the epoch, same clock as `now`), never before. */
  at<T>(at: number, run: (arg: T) => void, arg: T): void {
    if (this.stopped) return;
    this.place(at, run as Run, arg);
    if (at < this.timerAt) this.arm(at);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.firsts.fill(NONE);
    this.lasts.fill(NONE);
    this.pool.clear();
    this.inWheel = 0;
    this.far.clear();
  }

  private place(at: number, run: Run, arg: unknown): void {
    // An empty wheel starts at the new wake-up, or now if that is sooner: the wheel never starts
    // ahead of the clock, so a wake-up before its first millisecond is one already due.
    if (this.inWheel === 0 && !this.firing) this.cursor = Math.floor(Math.min(at, this.now()));
    let ms = Math.floor(at);
    // Already due: it runs with the wheel's first millisecond.
    if (ms < this.cursor) ms = this.cursor;
    if (ms >= this.cursor + WHEEL_MS) {
      this.far.push(at, run, arg);
      return;
    }
    this.insert(ms & WHEEL_MASK, this.pool.take(at, run, arg));
    this.inWheel++;
  }

  /** Links `entry` into `slot` after every entry of its time or earlier (searching from the end). */
  private insert(slot: number, entry: number): void {
    const { ats, next, prev } = this.pool;
    const at = ats[entry] as number;
    let before = this.lasts[slot] as number;
    while (before !== NONE && (ats[before] as number) > at) before = prev[before] as number;
    const after = before === NONE ? (this.firsts[slot] as number) : (next[before] as number);
    prev[entry] = before;
    next[entry] = after;
    if (before === NONE) this.firsts[slot] = entry;
    else next[before] = entry;
    if (after === NONE) this.lasts[slot] = entry;
    else prev[after] = entry;
  }

  private arm(at: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.now()));
    this.timer = setTimeout(() => this.fire(), delay);
    // Waiting keys alone must not keep a stopping process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const nowMs = Math.floor(now);
    const pool = this.pool;
    this.firing = true;
    try {
      if (this.inWheel === 0) this.cursor = nowMs;
      // Far wake-ups the wheel now reaches move into it first, so order holds across both.
      this.pullNear();
      while (this.inWheel > 0 && this.cursor <= nowMs && !this.stopped) {
        const slot = this.cursor & WHEEL_MASK;
        const entry = this.firsts[slot] as number;
        if (entry === NONE) {
          this.cursor++;
          this.pullNear();
          continue;
        }
        // Later in this millisecond: it and those behind it wait for the next firing.
        if ((pool.ats[entry] as number) > now) break;
        // Unlinked before it runs: a run may ask for wake-ups in this very slot, which run in
        // this firing if they are due (in time order), or stay for the next.
        const second = pool.next[entry] as number;
        this.firsts[slot] = second;
        if (second === NONE) this.lasts[slot] = NONE;
        else pool.prev[second] = NONE;
        this.inWheel--;
        const run = pool.runs[entry] as (arg: unknown) => void;
        const arg = pool.args[entry];
        pool.release(entry);
        run(arg);
      }
    } finally {
      this.firing = false;
      // Also after a run threw (a bug): the wake-ups behind it still get their timer.
      this.arm(this.firstAt());
    }
  }

  /** Moves far wake-ups that fall within the wheel's reach into it. */
  private pullNear(): void {
    while (this.far.size > 0 && this.far.firstAt < this.cursor + WHEEL_MS) {
      const { at, run, arg } = this.far.pop();
      this.place(at, run, arg);
    }
  }

  /** The time of the earliest wake-up (Infinity when there is none). */
  private firstAt(): number {
    if (this.inWheel > 0)
      for (let ms = this.cursor; ms < this.cursor + WHEEL_MS; ms++) {
        const entry = this.firsts[ms & WHEEL_MASK] as number;
        if (entry !== NONE) return this.pool.ats[entry] as number;
      }
    return this.far.firstAt;
  }
}

/** Wake-ups beyond the wheel, in a binary heap ordered by time, then by the order asked. */
class WakeHeap {
  /** Wake-up times; `seqs` keeps wake-ups of the same time in the order they were asked. */
  private ats = new Float64Array(64);
  private seqs = new Float64Array(64);
  private runs: Run[] = [];
  private args: unknown[] = [];
  private count = 0;
  private seq = 0;

  get size(): number {
    return this.count;
  }

  get firstAt(): number {
    return this.count === 0 ? Number.POSITIVE_INFINITY : (this.ats[0] as number);
  }

  clear(): void {
    this.count = 0;
    this.runs = [];
    this.args = [];
  }

  push(at: number, run: Run, arg: unknown): void {
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

  pop(): { at: number; run: Run; arg: unknown } {
    const first = { at: this.ats[0] as number, run: this.runs[0] as Run, arg: this.args[0] };
    this.removeFirst();
    return first;
  }

  private removeFirst(): void {
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
    this.ats = doubled(this.ats);
    this.seqs = doubled(this.seqs);
  }
}

const noop = (): void => {};

/** A typed array twice as long, starting with `array`'s contents. */
function doubled<T extends Float64Array | Int32Array>(array: T): T {
  const bigger = new (array.constructor as new (length: number) => T)(array.length * 2);
  bigger.set(array);
  return bigger;
}
