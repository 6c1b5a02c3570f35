/**
 * Group commit for partition logs. Produce handlers append, then await
 * `durable(log, lastOffset)`; the flusher collects every waiter that arrives
 * within one event-loop turn and then syncs each log concerned once, so one
 * fdatasync covers all the batches appended meanwhile. While a pass runs (the
 * syncs block), new requests queue up for the next pass, which is what makes
 * the coalescing grow with load.
 */
import { clearImmediate, setImmediate } from "node:timers";
import { assert } from "../util/mod.ts";

/**
 * "always": a write is durable before durable() resolves (Kafka with
 * flush.messages=1). "interval": durable() resolves at once and logs are
 * synced every intervalMs (Kafka's default of trusting the page cache).
 */
export type FlushPolicy =
  | { mode: "always" }
  | { mode: "interval"; intervalMs: number };

/** What the flusher needs of a log; PartitionLog is one. */
export interface SyncableLog {
  readonly durableEndOffset: bigint;
  sync(): void;
}

export interface FlusherOptions {
  policy?: FlushPolicy;
  /** Called after each sync() the flusher makes; for metrics and tests. */
  onSync?: (log: SyncableLog) => void;
  /** Where background syncs (interval mode) report failures. */
  onError?: (log: SyncableLog, error: unknown) => void;
}

interface Waiter {
  lastOffset: bigint;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Flusher {
  readonly #policy: FlushPolicy;
  readonly #onSync: (log: SyncableLog) => void;
  readonly #onError: (log: SyncableLog, error: unknown) => void;
  // "always": who waits on which log until the next pass.
  #waiters = new Map<SyncableLog, Waiter[]>();
  // "interval": logs written since the last background pass.
  #dirty = new Set<SyncableLog>();
  #passTimer: ReturnType<typeof setImmediate> | undefined;
  #intervalTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: FlusherOptions = {}) {
    this.#policy = options.policy ?? { mode: "always" };
    this.#onSync = options.onSync ?? (() => {});
    this.#onError = options.onError ?? ((_log, error) => {
      console.error("Background sync of a partition log failed:", error);
    });
    if (this.#policy.mode === "interval") {
      const { intervalMs } = this.#policy;
      if (!Number.isInteger(intervalMs) || intervalMs <= 0) {
        throw new RangeError(
          `Flush intervalMs must be a positive integer: got ${intervalMs}`,
        );
      }
      const timer = setInterval(() => this.#syncDirty(), intervalMs);
      // The broker's lifetime is not this timer's business.
      Deno.unrefTimer(timer);
      this.#intervalTimer = timer;
    }
  }

  /**
   * Resolves once every offset up to `lastOffset` (inclusive) of `log` is
   * durable, or at once under the interval policy.
   */
  durable(log: SyncableLog, lastOffset: bigint): Promise<void> {
    assert(!this.#closed, "Flusher used after close");
    if (this.#policy.mode === "interval") {
      this.#dirty.add(log);
      return Promise.resolve();
    }
    if (lastOffset < log.durableEndOffset) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiters = this.#waiters.get(log);
    if (waiters === undefined) {
      this.#waiters.set(log, [{ lastOffset, resolve, reject }]);
    } else {
      waiters.push({ lastOffset, resolve, reject });
    }
    // setImmediate runs once this loop turn's I/O callbacks are done, so all
    // requests read in the turn share the pass. A microtask may run between
    // two of them; setTimeout(0) waits ~2 ms here, setImmediate ~10 µs.
    this.#passTimer ??= setImmediate(() => this.#syncWaiters());
    return promise;
  }

  /** Stops the timers after a last pass that settles every waiter. */
  close(): void {
    if (this.#closed) return;
    if (this.#passTimer !== undefined) clearImmediate(this.#passTimer);
    clearInterval(this.#intervalTimer);
    this.#syncWaiters();
    this.#syncDirty();
    this.#closed = true;
  }

  /**
   * Drops a log that is being closed or deleted: its waiters settle on what
   * is already durable (close() syncs), and no later pass touches it.
   */
  forget(log: SyncableLog): void {
    this.#dirty.delete(log);
    const waiters = this.#waiters.get(log);
    this.#waiters.delete(log);
    if (waiters !== undefined) this.#settle(log, waiters, null);
  }

  #syncWaiters(): void {
    this.#passTimer = undefined;
    const pass = this.#waiters;
    this.#waiters = new Map();
    for (const [log, waiters] of pass) {
      // Another pass or a close may have covered them already.
      const covered = waiters.every((w) => w.lastOffset < log.durableEndOffset);
      this.#settle(log, waiters, covered ? null : this.#sync(log));
    }
  }

  #settle(
    log: SyncableLog,
    waiters: Waiter[],
    failure: { error: unknown } | null,
  ): void {
    for (const waiter of waiters) {
      if (failure !== null) waiter.reject(failure.error);
      else if (waiter.lastOffset < log.durableEndOffset) waiter.resolve();
      else {
        waiter.reject(
          new RangeError(
            `Offset ${waiter.lastOffset} is not durable: the log is durable up to ${log.durableEndOffset} (exclusive)`,
          ),
        );
      }
    }
  }

  #syncDirty(): void {
    const pass = this.#dirty;
    this.#dirty = new Set();
    for (const log of pass) {
      const failure = this.#sync(log);
      if (failure !== null) this.#onError(log, failure.error);
    }
  }

  #sync(log: SyncableLog): { error: unknown } | null {
    try {
      log.sync();
    } catch (error) {
      return { error };
    }
    this.#onSync(log);
    return null;
  }
}
