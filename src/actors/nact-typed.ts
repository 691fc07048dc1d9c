/**
 * A thin typed layer over nact 7 (unmaintained; its `Ref<A>` is assignable to `Ref<B>` and
 * unannotated handlers become `any`). Everything else in src/actors talks to nact only here.
 */
import { createRequire } from 'node:module';
import nact from 'nact';

/**
 * nact keeps the Immediate of an actor's last message in `actor.immediate` for good, and Node
 * leaves a spent Immediate linked to the others of its batch: so every idle actor kept a chain
 * of spent Immediates alive until they were promoted to the old generation (bench/throttle at
 * 10,000 keys of one call a second: p99 dispatch lateness ~22 ms with them, ~11 ms without).
 * Forget it once the mailbox is empty: nact reads it only in `stop()`, to cancel a pending one,
 * and an actor that is not busy has none pending. (nact's persistent actors, which we do not
 * use, also keep their recovery there.)
 */
interface NactActorClass {
  prototype: { processNext(this: { busy: boolean; immediate: unknown }): void };
}
const { Actor } = createRequire(import.meta.url)('nact/lib/actor.js') as { Actor: NactActorClass };
const processNext = Actor.prototype.processNext;
Actor.prototype.processNext = function (this: { busy: boolean; immediate: unknown }) {
  processNext.call(this);
  if (!this.busy) this.immediate = undefined;
};

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

export interface CrashInfo<M> {
  /** The message being handled when the actor threw; nact drops it, so the owner must act on it. */
  message: M | undefined;
  error: Error;
  /** Crashes of this actor within `supervision.window`, this one included. */
  crashes: number;
}

export interface Supervision<M> {
  /** `resume` keeps the state (and the mailbox); `reset` re-creates the state, keeps the mailbox. */
  restart: 'resume' | 'reset';
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** More crashes than this within `windowMs` and the actor is escalated to its parent, which stops it. */
  maxCrashes: number;
  windowMs: number;
  /** Called for each crash before the restart: the place to retry or dead-letter the dropped message. */
  onCrash: (info: CrashInfo<M>) => void;
}

export interface ActorSpec<S, M> {
  name: string;
  initialState: () => S;
  receive: (state: S, message: M, ctx: ActorContext<M>) => S | Promise<S>;
  supervision: Supervision<M>;
  /** Runs once the actor has stopped, with its last state (hand back what it held). */
  afterStop?: (state: S) => void;
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
  nact.dispatch(ref as never, message);
}

export function stopActor(ref: ActorRef<never> | ParentRef): void {
  nact.stop(ref as never);
}

/**
 * A parent that handles no messages. nact copies an actor's children map for every message it
 * handles (~1.2 ms per message at 10,000 children), so actors with many children are silent
 * supervisors; whoever routes to the children keeps its own map. An escalated child is stopped.
 */
export function spawnSupervisor(
  parent: ParentRef,
  name: string,
  onEscalated: (error: Error) => void,
): ParentRef {
  const onCrash = (_message: unknown, error: unknown, ctx: NactSupervisionContext): symbol => {
    try {
      onEscalated(asError(error));
    } catch {
      // onCrash must never throw: nact turns that into an unhandled rejection.
    }
    return ctx.stopChild;
  };
  // Not spawnStateless: stateless actors replace onCrash with `resume`, which would leave an
  // escalating child busy for ever instead of stopping it.
  return nact.spawn(parent as never, (state: undefined) => state, name, { onCrash } as never) as ParentRef;
}

export function spawnActor<S, M>(parent: ParentRef, spec: ActorSpec<S, M>): ActorRef<M> {
  const crashTimes: number[] = [];
  const { supervision } = spec;
  const onCrash = async (
    message: M | undefined,
    error: unknown,
    ctx: NactSupervisionContext,
  ): Promise<symbol> => {
    try {
      const now = Date.now();
      crashTimes.push(now);
      while (crashTimes.length > 0 && (crashTimes[0] as number) <= now - supervision.windowMs)
        crashTimes.shift();
      const crashes = crashTimes.length;
      supervision.onCrash({ message, error: asError(error), crashes });
      if (crashes > supervision.maxCrashes) return ctx.escalate;
      // Restarting at once would spin on a crash caused by something outside (a full disk).
      const delay = Math.min(supervision.backoffMaxMs, supervision.backoffBaseMs * 2 ** (crashes - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
      return supervision.restart === 'resume' ? ctx.resume : ctx.reset;
    } catch {
      return ctx.stop;
    }
  };
  const props = {
    initialStateFunc: () => spec.initialState(),
    onCrash,
    afterStop: spec.afterStop === undefined ? undefined : (state: S) => spec.afterStop?.(state),
  };
  const ref = nact.spawn(
    parent as never,
    (state: S, message: M, nactCtx: { self: unknown; name: string }) =>
      spec.receive(state, message, { self: nactCtx.self as ActorRef<M>, name: nactCtx.name }),
    spec.name,
    props as never,
  );
  return ref as ActorRef<M>;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
