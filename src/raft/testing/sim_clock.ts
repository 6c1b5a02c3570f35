import type { Clock, TimerCallback, TimerHandle } from "../../util/mod.ts";
import type { SeededRng } from "./rng.ts";

interface SimEvent {
  dueMs: number;
  /** Breaks ties between events due together: first scheduled, first run. */
  seq: number;
  cb: TimerCallback;
  intervalMs: number | null;
}

/**
 * Simulated time for code written against Clock. Nothing runs by itself:
 * step() runs the next due event, advancing time to it, and waits for a
 * promise the callback returns (a RaftHost turn, with its real WAL sync)
 * before it returns. So one event at a time runs, time only moves while
 * everything is idle, and the order of events depends on the seed alone,
 * not on how fast the disk is.
 *
 * The seed enters through jitter: each timeout and interval firing is late
 * by 0..jitterMsMax, which reorders hosts' ticks and timeouts from seed to
 * seed. Immediates run at the current time without jitter.
 */
export class SimClock implements Clock {
  readonly #rng: SeededRng;
  readonly #jitterMsMax: number;
  readonly #events = new Map<number, SimEvent>();
  #nowMs = 0;
  #seq = 0;
  #nextId = 1;

  constructor(options: { rng: SeededRng; jitterMsMax?: number }) {
    this.#rng = options.rng;
    this.#jitterMsMax = options.jitterMsMax ?? 0;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Events scheduled and not cleared. */
  get pending(): number {
    return this.#events.size;
  }

  setTimeout(cb: TimerCallback, delayMs: number): TimerHandle {
    return this.#add({ cb, delayMs, intervalMs: null });
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#clear(handle);
  }

  setInterval(cb: TimerCallback, intervalMs: number): TimerHandle {
    return this.#add({ cb, delayMs: intervalMs, intervalMs });
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.#clear(handle);
  }

  setImmediate(cb: TimerCallback): TimerHandle {
    const id = this.#nextId++;
    this.#events.set(id, {
      dueMs: this.#nowMs,
      seq: this.#seq++,
      cb,
      intervalMs: null,
    });
    return id as unknown as TimerHandle;
  }

  clearImmediate(handle: TimerHandle | undefined): void {
    this.#clear(handle);
  }

  /**
   * Runs the earliest due event (advancing time to it, never past
   * `untilMs`) and waits for what it returned. False when no event is due
   * by `untilMs`; time then stands at `untilMs`.
   */
  async step(untilMs = Infinity): Promise<boolean> {
    let nextId = -1;
    let next: SimEvent | undefined;
    for (const [id, e] of this.#events) {
      if (
        next === undefined || e.dueMs < next.dueMs ||
        (e.dueMs === next.dueMs && e.seq < next.seq)
      ) {
        next = e;
        nextId = id;
      }
    }
    if (next === undefined || next.dueMs > untilMs) {
      if (untilMs !== Infinity) this.#nowMs = Math.max(this.#nowMs, untilMs);
      return false;
    }
    this.#nowMs = Math.max(this.#nowMs, next.dueMs);
    if (next.intervalMs === null) {
      this.#events.delete(nextId);
    } else {
      // Re-armed before it runs, so that the callback may clear it.
      next.dueMs = this.#nowMs + next.intervalMs + this.#jitter();
      next.seq = this.#seq++;
    }
    await next.cb();
    return true;
  }

  #add(
    options: { cb: TimerCallback; delayMs: number; intervalMs: number | null },
  ): TimerHandle {
    const id = this.#nextId++;
    this.#events.set(id, {
      dueMs: this.#nowMs + Math.max(0, options.delayMs) + this.#jitter(),
      seq: this.#seq++,
      cb: options.cb,
      intervalMs: options.intervalMs,
    });
    return id as unknown as TimerHandle;
  }

  #clear(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.#events.delete(handle as unknown as number);
  }

  #jitter(): number {
    return this.#jitterMsMax === 0
      ? 0
      : this.#rng.between(0, this.#jitterMsMax);
  }
}
