/**
 * One timer for the whole node. A throttle actor that must wait asks for a wake-up here instead
 * of holding its own `setTimeout`: 100,000 waiting keys cost one wheel, not 100,000 timers.
 * (Node's timers also wrap around to ~0 for delays of ~24.8 days or more; this does not.)
 *
 * Wake-ups within `WHEEL_MS` of the wheel's position sit in a timing wheel: one slot per
 * millisecond, each slot kept in time order (wake-ups mostly arrive in order, so inserting from
 * the end is O(1)). Asking and running are then O(1); a binary heap of 100,000 wake-ups cost
 * ~11% of a node's CPU at 30,000 keys in its sift-down alone (cache misses over four arrays,
 * bench/throttle with perf). Wake-ups further out (a passivation in an hour, a pause until
 * midnight) wait in a heap and move into the wheel as it comes near them.
 *
 * Both are kept in parallel arrays, not one object per wake-up: at 100,000 keys a node asks for
 * 100,000 wake-ups a second, each living about a second, just long enough for the garbage
 * collector to promote it to the old generation and mark it there. A wake-up runs `run(arg)`:
 * callers pass one shared function and their own argument (a throttle passes its actor ref), so
 * no closure is made per wake-up either. Wake-ups run in time order, those of the same time in
 * the order they were asked, and never before their time.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Milliseconds the wheel covers (a power of two): a key's window of 1 s plus margin fits. */
const WHEEL_MS = 4_096;
const WHEEL_MASK = WHEEL_MS - 1;

type Run = (arg: never) => void;

/**
 * Wake-ups in time order (then in the order asked), in parallel arrays that are never shrunk:
 * `n` counts the live ones. A wheel slot fills with ~100 wake-ups a second at 100,000 keys;
 * arrays grown anew to that size for every run lived a second, long enough to be promoted to
 * the old generation as garbage (and truncating an array to 0 frees its room in V8).
 */
class WakeList {
  ats: number[] = [];
  runs: Run[] = [];
  args: unknown[] = [];
  n = 0;

  insert(at: number, run: Run, arg: unknown): void {
    let i = this.n++;
    // Mostly in order: appended. Else the later ones move up one place.
    while (i > 0 && (this.ats[i - 1] as number) > at) {
      this.put(i, this.ats[i - 1] as number, this.runs[i - 1] as Run, this.args[i - 1]);
      i--;
    }
    this.put(i, at, run, arg);
  }

  /** Forgets the first `count` wake-ups (already run): the rest move to the front. */
  dropFirst(count: number): void {
    const left = this.n - count;
    for (let j = 0; j < left; j++) {
      this.ats[j] = this.ats[j + count] as number;
      this.runs[j] = this.runs[j + count] as Run;
      this.args[j] = this.args[j + count];
    }
    for (let j = left; j < this.n; j++) {
      this.runs[j] = noop;
      this.args[j] = undefined;
    }
    this.n = left;
  }

  /** Forgets every wake-up (and what they referenced), keeping the arrays' room. */
  clear(): void {
    for (let i = 0; i < this.n; i++) {
      this.runs[i] = noop;
      this.args[i] = undefined;
    }
    this.n = 0;
  }

  private put(i: number, at: number, run: Run, arg: unknown): void {
    if (i === this.ats.length) {
      this.ats.push(at);
      this.runs.push(run);
      this.args.push(arg);
    } else {
      this.ats[i] = at;
      this.runs[i] = run;
      this.args[i] = arg;
    }
  }
}

/**
 * One millisecond of the wheel. Running it swaps its wake-ups with the spare list (emptied after
 * the slot's previous run): a run may ask for new wake-ups in this very slot.
 */
class Slot {
  live = new WakeList();
  spare = new WakeList();
}

export class Scheduler {
  /** Slot `ms & WHEEL_MASK` holds the wake-ups of millisecond `ms`, for ms in [cursor, cursor + WHEEL_MS). */
  private readonly wheel: Array<Slot | undefined> = new Array<Slot | undefined>(WHEEL_MS).fill(undefined);
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
    this.wheel.fill(undefined);
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
    const index = ms & WHEEL_MASK;
    const slot = (this.wheel[index] ??= new Slot());
    slot.live.insert(at, run, arg);
    this.inWheel++;
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
    this.firing = true;
    try {
      if (this.inWheel === 0) this.cursor = nowMs;
      // Far wake-ups the wheel now reaches move into it first, so order holds across both.
      this.pullNear();
      while (this.inWheel > 0 && this.cursor <= nowMs && !this.stopped) {
        const slot = this.wheel[this.cursor & WHEEL_MASK];
        if (slot === undefined || slot.live.n === 0) {
          this.cursor++;
          this.pullNear();
          continue;
        }
        const taken = slot.live;
        slot.live = slot.spare;
        slot.spare = taken;
        this.inWheel -= taken.n;
        let i = 0;
        try {
          for (; i < taken.n && (taken.ats[i] as number) <= now && !this.stopped; i++)
            (taken.runs[i] as (arg: unknown) => void)(taken.args[i]);
        } catch (error) {
          // A run that throws (a bug) loses the rest of its millisecond, as before; the spare
          // list must still be empty for the slot's next run.
          taken.clear();
          throw error;
        }
        if (i < taken.n) {
          // Later in this millisecond: they go back, ahead of any of their time asked meanwhile,
          // in the same arrays. (The timer has whole milliseconds, so this is the common case:
          // a new list per early firing grew three arrays anew ~1,000 times a second, and they
          // lived long enough to be promoted: 12% of what a node of 100,000 keys promoted.)
          const asked = slot.live;
          this.inWheel += taken.n - i;
          taken.dropFirst(i);
          for (let j = 0; j < asked.n; j++)
            taken.insert(asked.ats[j] as number, asked.runs[j] as Run, asked.args[j]);
          asked.clear();
          slot.live = taken;
          slot.spare = asked;
          break;
        }
        taken.clear();
        // Wake-ups asked meanwhile for this millisecond are looked at again; else on to the next.
        if (slot.live.n === 0) {
          this.cursor++;
          this.pullNear();
        }
      }
    } finally {
      this.firing = false;
    }
    this.arm(this.firstAt());
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
        const slot = this.wheel[ms & WHEEL_MASK];
        if (slot !== undefined && slot.live.n > 0) return slot.live.ats[0] as number;
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
    const ats = new Float64Array(this.ats.length * 2);
    ats.set(this.ats);
    this.ats = ats;
    const seqs = new Float64Array(this.seqs.length * 2);
    seqs.set(this.seqs);
    this.seqs = seqs;
  }
}

const noop = (): void => {};
