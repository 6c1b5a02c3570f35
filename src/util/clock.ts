/**
 * The time seam: every timer and time reading of code that a simulator
 * must drive goes through a Clock, so that a test can replace real time by
 * simulated time and replay a run from its seed.
 */
import {
  clearImmediate as nodeClearImmediate,
  setImmediate as nodeSetImmediate,
} from "node:timers";

declare const timerBrand: unique symbol;

/** An opaque handle for one scheduled callback; only the Clock that made it may clear it. */
export type TimerHandle = { readonly [timerBrand]: true };

/**
 * A callback a Clock runs. It may return a promise: a simulated clock waits
 * for it to settle before it runs anything else (so a loop turn's I/O
 * finishes before the next simulated event), the real clock ignores it.
 */
export type TimerCallback = () => unknown;

export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin; never goes backwards. */
  nowMs(): number;
  setTimeout(cb: TimerCallback, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(cb: TimerCallback, intervalMs: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /**
   * Runs `cb` on a next turn of the event loop, after pending I/O, without
   * the minimum delay that chained setTimeout(0) calls are clamped to.
   */
  setImmediate(cb: TimerCallback): TimerHandle;
  clearImmediate(handle: TimerHandle | undefined): void;
}

function handle(raw: unknown): TimerHandle {
  return raw as TimerHandle;
}

/** Real time: the runtime's timers and performance.now(). */
export const realClock: Clock = Object.freeze({
  nowMs: () => performance.now(),
  setTimeout: (cb: TimerCallback, delayMs: number) =>
    handle(setTimeout(cb, delayMs)),
  clearTimeout: (h: TimerHandle | undefined) =>
    clearTimeout(h as number | undefined),
  setInterval: (cb: TimerCallback, intervalMs: number) =>
    handle(setInterval(cb, intervalMs)),
  clearInterval: (h: TimerHandle | undefined) =>
    clearInterval(h as number | undefined),
  // node:timers, because chained setTimeout(0) is clamped to ~1-4 ms and the
  // Raft host chains one turn per commit.
  setImmediate: (cb: TimerCallback) => handle(nodeSetImmediate(cb)),
  clearImmediate: (h: TimerHandle | undefined) => {
    if (h !== undefined) {
      nodeClearImmediate(h as unknown as ReturnType<typeof nodeSetImmediate>);
    }
  },
});

/** Resolves once `delayMs` of the clock's time has passed. */
export function sleep(clock: Clock, delayMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, delayMs));
}
