/**
 * A thin typed layer over nact 7 (unmaintained; its `Ref<A>` is assignable to `Ref<B>` and
 * unannotated handlers become `any`). Everything else in src/actors talks to nact only here.
 */
import { createRequire } from 'node:module';
import nact from 'nact';
import { Mailbox, NO_MAIL, type MailQueue } from './mailbox.ts';

/**
 * How actors run here differs from nact 7.6.2 (unmaintained) in what it costs, not in what it
 * guarantees. The patched methods are `dispatch`, `handleMessage` and `processNext` of
 * `Actor.prototype` (nact/lib/actor.js); each actor still handles one message at a time, in
 * order, awaits a handler's promise before the next message, sends a crash to its supervision
 * with the message that caused it, and handles nothing once stopped.
 *
 * 1. Mailboxes drain in slices. nact handles each message in its own `setImmediate`, and an
 *    Immediate queued while Immediates run waits for the next turn of the event loop: so an
 *    actor handled at most ONE message per turn. The collector pool and the router are single
 *    actors that every call and every job pass through, so a node topped out at about 46,000
 *    calls a second with its loop turning empty 18% of the time (bench/throttle at 100,000
 *    keys). Here an actor handles its queued messages for up to `MAILBOX_SLICE_MS` per turn (a
 *    count limit of 64 or 1,024 left the pool behind: calls waited for it longer than half the
 *    margin and had to take their slots again).
 * 2. One `setImmediate` per turn for all actors, not one per actor with mail. An actor that gets
 *    mail while idle joins a run queue, and one Immediate runs the queued actors in order, in
 *    rounds: those that get mail during a round run in the next round of the same turn, for up
 *    to `TURN_MS`, then the rest waits for the next turn. At 100,000 keys a throttle actor wakes
 *    up about twice per call: nact allocated an Immediate, a closure and a promise each time
 *    (~0.25 KB), a quarter of all allocation. Rounds let a call that a throttle hands to the
 *    pool leave in the same turn: with one round per turn, each hop (router, throttle, pool)
 *    waited for a whole turn of the event loop, so a busy node added a turn's length per hop.
 * 3. A mailbox holds the messages themselves. nact queued `{ message, sender }` per message;
 *    our handlers never read a sender (every `tell` sends as nobody).
 * 4. A handler's context is its actor's reference, which answers `self` and `name`: nact built a
 *    context object per message (and copied the actor's children map into it).
 * 5. nact kept the Immediate of an actor's last message in `actor.immediate` for good, and Node
 *    leaves a spent Immediate linked to the others of its batch, so every idle actor kept a
 *    chain of them alive until they were promoted (bench/throttle at 10,000 keys: p99 dispatch
 *    lateness ~22 ms with them, ~11 ms without). With one Immediate for all, actors keep none.
 */
export const MAILBOX_SLICE_MS = 2;
/**
 * How long one turn runs actors that got mail while it ran (a throttle's call reaches the pool
 * in the same turn instead of the next), before timers and I/O get their turn.
 */
export const TURN_MS = 4;

interface NactActor {
  reference: object;
  name: string;
  busy: boolean;
  stopped: boolean;
  immediate: unknown;
  state: unknown;
  mailbox: MailQueue;
  f: (this: unknown, state: unknown, message: unknown, ctx: unknown) => unknown;
  afterMessage(): void;
  handleFault(message: unknown, sender: unknown, error: unknown): void;
  stop(): void;
  assertNotStopped(): boolean;
  clearTimeout(): void;
  setTimeout(): void;
  handleMessage(message: unknown, sender: unknown): void;
  processNext(): void;
  dispatch(message: unknown, sender: unknown): void;
  children: ReadonlyMap<string, unknown>;
  childReferences: ReadonlyMap<string, unknown>;
  system: { name: string };
  childSpawned(child: object): void;
}
const require = createRequire(import.meta.url);
const { Actor } = require('nact/lib/actor.js') as { Actor: { prototype: NactActor } };
const { Nobody, ActorReference } = require('nact/lib/references.js') as {
  Nobody: new () => object;
  ActorReference: { prototype: object };
};
/** nact allocates a `Nobody` sender (three objects) per message unless given one; ours read no sender. */
const NOBODY = new Nobody();
const { ActorPath } = require('nact/lib/paths.js') as {
  ActorPath: new (parts: string[], system: unknown) => object;
};
const systemMap = require('nact/lib/system-map.js') as {
  find(systemName: string | undefined, ref: object): NactActor | undefined;
};

// A reference is its own handler context (change 4): `ctx.self` is the reference, `ctx.name` its name.
Object.defineProperty(ActorReference.prototype, 'self', {
  get(this: object) {
    return this;
  },
});

/**
 * Each ref spawned here points at its actor, so `tell` skips nact's lookup (a walk down the
 * actor path from the system, through the 100,000-entry children map of `throttles`). The
 * link is dropped when the actor stops: a stopped actor receives nothing, as in nact.
 */
const ACTOR = Symbol('prism.actor');
interface LinkedRef {
  [ACTOR]?: NactActor | undefined;
  system: { name: string | undefined };
}

Actor.prototype.dispatch = function (this: NactActor, message: unknown) {
  this.assertNotStopped();
  this.clearTimeout();
  if (!this.busy) this.handleMessage(message, NOBODY);
  // A lean actor gets its mailbox with its first queued message (see Mailbox).
  else if (this.mailbox === NO_MAIL) (this.mailbox = new Mailbox()).push(message);
  else this.mailbox.push(message);
};
Actor.prototype.handleMessage = function (this: NactActor, message: unknown) {
  this.busy = true;
  runLater(this, message);
};
Actor.prototype.processNext = function (this: NactActor) {
  if (this.stopped) return;
  if (this.mailbox.length > 0) runLater(this, this.mailbox.shift());
  else becomeIdle(this);
};

/**
 * The run queue (change 2): actors with mail, and the first message each is to handle. Two sets
 * of arrays take turns and are never truncated (truncating to 0 frees an array's room in V8, and
 * regrowing it cost an allocation every few pushes); `queued` counts the entries in use.
 */
let queuedActors: Array<NactActor | undefined> = [];
let queuedMessages: unknown[] = [];
let queued = 0;
let spareActors: Array<NactActor | undefined> = [];
let spareMessages: unknown[] = [];
let runScheduled = false;

function runLater(actor: NactActor, message: unknown): void {
  queuedActors[queued] = actor;
  queuedMessages[queued] = message;
  queued++;
  if (!runScheduled) {
    runScheduled = true;
    setImmediate(runQueued);
  }
}

function runQueued(): void {
  // runScheduled stays true while this turn runs: mail that arrives meanwhile joins the next
  // round of this turn, or one Immediate scheduled at the end.
  const start = clock.now();
  try {
    do runRound();
    while (queued > 0 && clock.now() - start < TURN_MS);
  } finally {
    runScheduled = false;
    if (queued > 0) {
      runScheduled = true;
      setImmediate(runQueued);
    }
  }
}

/** Runs the actors queued so far, in order; those that get mail meanwhile wait for the next round. */
function runRound(): void {
  const actors = queuedActors;
  const messages = queuedMessages;
  const count = queued;
  queuedActors = spareActors;
  queuedMessages = spareMessages;
  queued = 0;
  let i = 0;
  try {
    for (; i < count; i++) {
      const actor = actors[i] as NactActor;
      const message = messages[i];
      // Nothing stays alive through a spent entry.
      actors[i] = undefined;
      messages[i] = undefined;
      // A stopped actor's turn is dropped, as nact's stop() cleared its Immediate.
      if (!actor.stopped) runMailbox(actor, message, MAILBOX_SLICE_MS);
    }
  } finally {
    // Only if runMailbox threw (a bug): the actors after it still get their turn.
    for (i++; i < count; i++) {
      runLater(actors[i] as NactActor, messages[i]);
      actors[i] = undefined;
      messages[i] = undefined;
    }
    spareActors = actors;
    spareMessages = messages;
  }
}

function becomeIdle(actor: NactActor): void {
  // What nact's processNext does with an empty mailbox (no actor holds an Immediate here).
  actor.busy = false;
  actor.setTimeout();
}

/**
 * Handles `message`, then the actor's queued messages, for up to `budgetMs` of its own time
 * (change 1). While a handler's promise is pending the clock stops: the rest of the batch runs
 * before promise callbacks do, and that time is not this actor's. (Counted, it left an actor with
 * an async handler, the router, one message per turn while 100,000 keys arrived.)
 *
 * The clock is read only once a second message is taken, then every `CLOCK_EVERY` messages: most
 * turns of a throttle actor handle one or two messages, and reading the clock around each was
 * ~10% of a node's CPU at 30,000 keys (bench/throttle with perf).
 */
function runMailbox(actor: NactActor, message: unknown, budgetMs: number): void {
  let start = Number.NaN;
  let taken = 0;
  for (;;) {
    let next: unknown;
    try {
      // Every actor here is spawned by this module; its handler reads only `self` and `name`.
      next = actor.f.call(actor.reference, actor.state, message, actor.reference);
    } catch (error) {
      actor.handleFault(message, NOBODY, error);
      return;
    }
    if (isThenable(next)) {
      const handled = message;
      const left = Number.isNaN(start) ? budgetMs : budgetMs - (clock.now() - start);
      next.then(
        (state) => {
          if (afterMessage(actor, state)) continueMailbox(actor, left);
        },
        (error: unknown) => actor.handleFault(handled, NOBODY, error),
      );
      return;
    }
    if (!afterMessage(actor, next)) return;
    if (actor.mailbox.length === 0) {
      becomeIdle(actor);
      return;
    }
    message = actor.mailbox.shift();
    if (++taken === 1) start = clock.now();
    else if (taken % CLOCK_EVERY === 0 && clock.now() - start >= budgetMs) {
      // Let other actors and I/O have their turn; the rest of the mailbox comes next turn.
      runLater(actor, message);
      return;
    }
  }
}

/** Messages handled between two looks at the clock (a slice may overrun by that many). */
const CLOCK_EVERY = 8;
/** The global `performance` is a lazy getter: looked up once. */
const clock = globalThis.performance;

/** After an awaited handler: the next queued message, now if the actor has time left. */
function continueMailbox(actor: NactActor, budgetMs: number): void {
  if (actor.mailbox.length === 0) {
    becomeIdle(actor);
    return;
  }
  const message = actor.mailbox.shift();
  if (budgetMs <= 0) runLater(actor, message);
  else runMailbox(actor, message, budgetMs);
}

/** Keeps the state a handler returned; false once the actor has stopped (it handles no more). */
function afterMessage(actor: NactActor, state: unknown): boolean {
  actor.state = state;
  try {
    actor.afterMessage();
  } catch {
    // nact's afterMessage does nothing; nothing to recover.
  }
  return !actor.stopped;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

declare const MESSAGE: unique symbol;

/** A reference to an actor that accepts messages of type `M` (a phantom type over nact's ref). */
export interface ActorRef<M> {
  readonly [MESSAGE]?: (message: M) => void;
}

/** A reference that can parent actors: the system root or a supervisor. */
export interface ParentRef {
  readonly __parent?: true;
}

export interface ActorContext<M> {
  self: ActorRef<M>;
  name: string;
}

export interface CrashInfo<S, M> {
  /** The message being handled when the actor threw; nact drops it, so the owner must act on it. */
  message: M | undefined;
  error: Error;
  /** Crashes of this actor within `supervision.window`, this one included. */
  crashes: number;
  self: ActorRef<M>;
  /** The actor's state as the crash left it (`resume` keeps it). */
  state: S;
}

export interface Supervision<S, M> {
  /** `resume` keeps the state (and the mailbox); `reset` re-creates the state, keeps the mailbox. */
  restart: 'resume' | 'reset';
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** More crashes than this within `windowMs` and the actor is escalated to its parent, which stops it. */
  maxCrashes: number;
  windowMs: number;
  /** Called for each crash before the restart: the place to retry or dead-letter the dropped message. */
  onCrash: (info: CrashInfo<S, M>) => void;
}

/**
 * What all actors of one kind share: their behaviour and supervision, defined once. 100,000
 * throttle actors then cost 100,000 states, not 100,000 copies of the closures that handle them.
 */
export interface ActorKind<S, M> {
  receive: (state: S, message: M, ctx: ActorContext<M>) => S | Promise<S>;
  supervision: Supervision<S, M>;
  /** Runs once the actor has stopped, with its last state (hand back what it held). */
  afterStop?: (state: S, self: ActorRef<M>) => void;
  /**
   * The spawner never gives two live siblings one name (the throttle registry numbers them), so
   * spawning skips nact's check for a sibling of that name: a miss in a map of 100,000 children
   * (~0.3 µs per key while 100,000 keys arrive, bench/throttle).
   */
  uniqueNames?: boolean;
  /**
   * The parent does not list the actor in nact's map of its children: whoever spawns it keeps
   * a directory of its own (a node's throttle actors are found through the router's map of
   * keys). Listing 100,000 throttle actors a second time cost a map insert per new key, ~1 µs
   * while 100,000 keys arrive (bench/throttle), and one more table of 100,000 entries for every
   * full collection to mark. Implies `uniqueNames`. Supervision is the same: a crash goes to the
   * actor's own policy, an escalation to the parent, which stops it.
   */
  unlisted?: boolean;
}

/** One actor of a kind of its own. */
export interface ActorSpec<S, M> extends ActorKind<S, M> {
  name: string;
  initialState: () => S;
}

interface NactSupervisionContext {
  resume: symbol;
  reset: symbol;
  stop: symbol;
  stopChild: symbol;
  escalate: symbol;
}

type NactRef = object;

export function startActorSystem(name: string): ParentRef {
  // nact's types miss the settings form of start(); its code reads `name` from it.
  return (nact.start as unknown as (settings: { name: string }) => ParentRef)({ name });
}

export function stopActorSystem(system: ParentRef): void {
  nact.stop(system as NactRef as never);
}

export function tell<M>(ref: ActorRef<M>, message: M): void {
  const linked = ref as LinkedRef;
  const actor = linked[ACTOR];
  if (actor !== undefined) {
    if (!actor.stopped) actor.dispatch(message, NOBODY);
    return;
  }
  // nact's types omit dispatch's third parameter (the sender).
  (nact.dispatch as (ref: unknown, message: unknown, sender: unknown) => void)(ref, message, NOBODY);
}

export function stopActor(ref: ActorRef<never> | ParentRef): void {
  // An actor spawned here is stopped through its link (an unlisted one cannot be found by path).
  const actor = (ref as LinkedRef)[ACTOR];
  if (actor !== undefined) {
    if (!actor.stopped) actor.stop();
    return;
  }
  nact.stop(ref as never);
}

/** Whether `ref` is a live child of `parent` (an actor spawned there by `defineActor`, not stopped). */
export function isLiveChildOf(ref: unknown, parent: ParentRef): boolean {
  const actor = (ref as LinkedRef | undefined)?.[ACTOR] as (NactActor & { parent?: unknown }) | undefined;
  return actor !== undefined && !actor.stopped && actor.parent === parentOf(parent);
}

/** The state of an actor spawned here while it lives (for tests and status). */
export function stateOf<S>(ref: ActorRef<never>): S | undefined {
  return (ref as LinkedRef)[ACTOR]?.state as S | undefined;
}

/**
 * A parent that handles no messages. nact copies an actor's children map for every message it
 * handles (~1.2 ms per message at 10,000 children), so actors with many children are silent
 * supervisors; whoever routes to the children keeps its own map. An escalated child is stopped
 * (`onEscalated` is told which, before it stops), listed or not (ActorKind.unlisted).
 */
export function spawnSupervisor(
  parent: ParentRef,
  name: string,
  onEscalated: (error: Error, child: ActorRef<never> | undefined) => void,
): ParentRef {
  const onCrash = (
    _message: unknown,
    error: unknown,
    ctx: NactSupervisionContext,
    child: object | undefined,
  ): symbol => {
    // onCrash must never throw: nact turns that into an unhandled rejection.
    try {
      onEscalated(asError(error), child as ActorRef<never> | undefined);
    } catch {
      // The owner's callback failed; the child is stopped all the same.
    }
    try {
      // Stopped here rather than by nact's `stopChild`, which looks the child up in this
      // supervisor's map of children: an unlisted child is not in it (nact would throw).
      if (child !== undefined) stopActor(child as ActorRef<never>);
    } catch {
      // Stopping a stopped actor: nothing left to do.
    }
    // The child is dealt with; `resume` only lets the supervisor (which has no mail) go idle.
    return ctx.resume;
  };
  // Not spawnStateless: stateless actors replace onCrash with `resume`, which would leave an
  // escalating child busy for ever instead of stopping it.
  const ref = nact.spawn(parent as never, (state: undefined) => state, name, { onCrash } as never) as object;
  const supervisor = systemMap.find((ref as LinkedRef).system.name, ref);
  // nact keeps two maps of a parent's children: `children` (actors, for finding and stopping
  // them) and `childReferences`, read only to give a handler `ctx.children`. A supervisor
  // handles no messages, so the second map (~75 bytes per throttle actor) is never read.
  if (supervisor !== undefined) supervisor.childReferences = UNREAD_CHILDREN;
  return ref as ParentRef;
}

/**
 * Defines a kind of actor once; the function it returns spawns one of that kind (under `parent`,
 * with its own name and state). Supervision: a crash calls `onCrash` with the dropped message,
 * then, after a backoff, resumes or resets the actor; more than `maxCrashes` within `windowMs`
 * escalates to the parent, which stops it.
 */
export function defineActor<S, M>(
  kind: ActorKind<S, M>,
): (parent: ParentRef, name: string, initialState: () => S) => ActorRef<M> {
  const { supervision } = kind;
  // Per actor, created on its first crash only.
  const crashTimes = new WeakMap<object, number[]>();
  const onCrash = async (
    message: M | undefined,
    error: unknown,
    ctx: NactSupervisionContext & { self: object },
  ): Promise<symbol> => {
    try {
      const now = Date.now();
      let times = crashTimes.get(ctx.self);
      if (times === undefined) crashTimes.set(ctx.self, (times = []));
      times.push(now);
      while (times.length > 0 && (times[0] as number) <= now - supervision.windowMs) times.shift();
      const crashes = times.length;
      const state = (ctx.self as LinkedRef)[ACTOR]?.state as S;
      supervision.onCrash({ message, error: asError(error), crashes, self: ctx.self as ActorRef<M>, state });
      if (crashes > supervision.maxCrashes) return ctx.escalate;
      // Restarting at once would spin on a crash caused by something outside (a full disk).
      const delay = Math.min(supervision.backoffMaxMs, supervision.backoffBaseMs * 2 ** (crashes - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
      return supervision.restart === 'resume' ? ctx.resume : ctx.reset;
    } catch {
      return ctx.stop;
    }
  };
  const afterStop = (state: S, ctx: { self: object }): void => {
    (ctx.self as LinkedRef)[ACTOR] = undefined;
    kind.afterStop?.(state, ctx.self as ActorRef<M>);
  };
  const resumes = supervision.restart === 'resume';
  // What every actor of this kind shares, on its prototype rather than copied into each actor.
  class KindActor extends LeanActor {}
  Object.assign(KindActor.prototype, { f: kind.receive, onCrash, afterStop });
  const listed = kind.unlisted !== true;
  const checkNames = listed && kind.uniqueNames !== true;
  return (parent, name, initialState) => {
    const parentActor = parentOf(parent);
    // As nact's spawn: a stopped parent (or system) spawns nothing.
    if (parentActor === undefined) throw new Error('Actor has stopped or never even existed');
    parentActor.assertNotStopped();
    if (checkNames && parentActor.children.has(name))
      throw new Error(`child actor of name ${name} already exists`);
    const ref = new LeanReference(name, parentActor);
    const actor = new KindActor(parentActor, name, ref);
    // An actor that resumes never re-creates its state: it keeps the state, not the function.
    if (resumes) actor.state = initialState();
    else {
      actor.initialStateFunc = initialState;
      actor.initializeState();
    }
    if (listed) parentActor.childSpawned(actor);
    ref[ACTOR] = actor as unknown as NactActor;
    return ref as ActorRef<M>;
  };
}

/**
 * The actor behind a parent reference, found by nact's walk down its path from the system (a
 * `reduce` over the path with a closure, ~0.25 µs) only the first time, then remembered while
 * it lives: a node spawns every throttle actor under the same supervisor.
 */
const parents = new WeakMap<object, NactActor>();
function parentOf(parent: ParentRef): NactActor | undefined {
  const known = parents.get(parent);
  if (known !== undefined && !known.stopped) return known;
  const found = systemMap.find((parent as LinkedRef).system.name, parent);
  if (found !== undefined) parents.set(parent, found);
  else parents.delete(parent);
  return found;
}

/** The children of every actor spawned by `defineActor`: none, ever. */
class NoChildren extends Map<string, never> {
  override set(): never {
    throw new Error('an actor spawned by defineActor cannot have children');
  }
}
const NO_CHILDREN: ReadonlyMap<string, never> = new NoChildren();

/** A supervisor's `childReferences`: nobody reads it, so nothing is kept. */
class UnreadChildren extends Map<string, never> {
  override set(): this {
    return this;
  }
}
const UNREAD_CHILDREN: ReadonlyMap<string, never> = new UnreadChildren();

/** Spawns one actor of a kind of its own (a node has one router, one pool). */
export function spawnActor<S, M>(parent: ParentRef, spec: ActorSpec<S, M>): ActorRef<M> {
  return defineActor(spec)(parent, spec.name, spec.initialState);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * An actor of a kind defined by `defineActor`: a nact `Actor` (same prototype chain, same methods
 * and supervision), built without its constructor. nact's constructor gave each actor an
 * `ActorPath` (a copy of its parent's path), a reference with a `system` object of its own, a
 * logger, a shutdown timer and two maps of children, and checked its name with a regular
 * expression: ~770 bytes and ~3.5 µs per actor, most of a throttle key's cost when 100,000 keys
 * arrive in a second (bench/throttle). Here the behaviour, supervision, the empty children
 * maps and the fields that stay unset sit on the kind's prototype, the path is made only when
 * something reads it (a lookup by path, a supervision context), and the reference points at
 * the actor system the parent has.
 */
class LeanActor {
  parent: NactActor | undefined;
  name: string;
  system: { name: string };
  reference: LeanReference;
  stopped = false;
  busy = false;
  mailbox: MailQueue = NO_MAIL;
  state: unknown = undefined;
  /** Set only for actors that `reset` (on the prototype, undefined, for the rest). */
  declare initialStateFunc: (() => unknown) | undefined;
  declare f: NactActor['f'];
  declare onCrash: unknown;
  declare afterStop: unknown;
  declare initializeState: () => void;
  /**
   * Every field is set here, so V8 keeps them all inside the object: assigned one by one to an
   * `Object.create` result, seven of them went to a separate properties array (64 B per actor).
   */
  constructor(parent: NactActor, name: string, reference: LeanReference) {
    this.parent = parent;
    this.name = name;
    this.system = parent.system;
    this.reference = reference;
  }
  get path(): object {
    return this.reference.path;
  }
}
Object.setPrototypeOf(LeanActor.prototype, Actor.prototype);
Object.assign(LeanActor.prototype, {
  children: NO_CHILDREN,
  childReferences: NO_CHILDREN,
  log: undefined,
  initialState: undefined,
  initialStateFunc: undefined,
  // nact's stop() clears `immediate`; nothing here sets one.
  immediate: undefined,
  // No shutdown timer (nact's `shutdownAfter` is never used here): nothing to set or clear.
  setTimeout: noTimer,
  clearTimeout: noTimer,
});

/**
 * A nact `ActorReference` of a `LeanActor`: its path is computed from its parent's when read.
 * Built by a constructor that sets every field, so each reference is one object of one shape
 * (an `Object.create` result given its fields one by one went through a shape per field).
 */
class LeanReference {
  readonly name: string;
  readonly parent: { path: { parts: readonly string[]; system: unknown } };
  /** What nact reads of a reference's system: its name. */
  readonly system: { readonly name: string };
  [ACTOR]: NactActor | undefined = undefined;
  constructor(name: string, parent: NactActor) {
    this.name = name;
    this.parent = parent.reference as LeanReference['parent'];
    this.system = parent.system;
  }
  get path(): object {
    const parentPath = this.parent.path;
    return new ActorPath([...parentPath.parts, this.name], parentPath.system);
  }
}
Object.setPrototypeOf(LeanReference.prototype, ActorReference.prototype);
Object.assign(LeanReference.prototype, { type: 'actor' });

function noTimer(): void {}
