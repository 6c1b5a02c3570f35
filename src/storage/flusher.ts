/**
 * Group commit for partition logs. Produce handlers append, then await
 * `durable(log, lastOffset)`; the flusher collects every waiter that arrives
 * within one event-loop turn and then syncs each log concerned once, so one
 * fdatasync covers all the batches appended meanwhile. The fdatasync runs off
 * the event loop (syncAsync), so requests keep being read, checked and
 * appended while the disk works. They wait for the next sync of their log,
 * which starts as soon as the running one ends: at most
 * MAX_SYNCS_IN_FLIGHT syncs of a log run at once, and the queue that forms
 * behind them is what makes the coalescing grow with load.
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
  /** Makes durable what was written before the call, without blocking. */
  syncAsync(): Promise<void>;
}

export interface FlusherOptions {
  policy?: FlushPolicy;
  /** Called after each sync() the flusher makes; for metrics and tests. */
  onSync?: (log: SyncableLog) => void;
  /** Where background syncs (interval mode) report failures. */
  onError?: (log: SyncableLog, error: unknown) => void;
}

/**
 * Concurrent fdatasyncs of one file are safe (each covers every write made
 * before it started), but two in flight were no faster than one on the
 * bench (1 partition, 4 and 16 batches of 64 KiB in flight): they slowed
 * each other down as much as they saved in waiting.
 */
const MAX_SYNCS_IN_FLIGHT = 1;

interface Waiter {
  lastOffset: bigint;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Flusher {
  readonly #policy: FlushPolicy;
  readonly #onSync: (log: SyncableLog) => void;
  readonly #onError: (log: SyncableLog, error: unknown) => void;
  // "always": who waits on which log for its next sync.
  #waiters = new Map<SyncableLog, Waiter[]>();
  // "always": how many syncs of each log are running.
  #syncing = new Map<SyncableLog, number>();
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
    // With every slot busy, the next sync starts when one ends.
    if (this.#hasFreeSlot(log)) {
      this.#passTimer ??= setImmediate(() => this.#startPass());
    }
    return promise;
  }

  /**
   * Stops the timers after a last, blocking pass that settles every waiter
   * (syncs in flight settle their own when they end).
   */
  close(): void {
    if (this.#closed) return;
    if (this.#passTimer !== undefined) clearImmediate(this.#passTimer);
    clearInterval(this.#intervalTimer);
    const pass = this.#waiters;
    this.#waiters = new Map();
    for (const [log, waiters] of pass) {
      this.#settle(log, waiters, this.#sync(log));
    }
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

  #hasFreeSlot(log: SyncableLog): boolean {
    return (this.#syncing.get(log) ?? 0) < MAX_SYNCS_IN_FLIGHT;
  }

  #startPass(): void {
    this.#passTimer = undefined;
    for (const log of [...this.#waiters.keys()]) {
      if (this.#hasFreeSlot(log)) void this.#syncFor(log);
    }
  }

  /**
   * Syncs `log` for the waiters it has now and settles them; then starts the
   * next sync if more came while every slot was busy. Never rejects:
   * failures go to the waiters.
   */
  async #syncFor(log: SyncableLog): Promise<void> {
    const waiters = this.#waiters.get(log);
    if (waiters === undefined || this.#closed) return;
    this.#waiters.delete(log);
    let failure: { error: unknown } | null = null;
    // Another sync (a close, a snapshot) may have covered them already.
    if (waiters.some((w) => w.lastOffset >= log.durableEndOffset)) {
      this.#syncing.set(log, (this.#syncing.get(log) ?? 0) + 1);
      try {
        await log.syncAsync();
        this.#onSync(log);
      } catch (error) {
        failure = { error };
      } finally {
        const running = this.#syncing.get(log)! - 1;
        if (running === 0) this.#syncing.delete(log);
        else this.#syncing.set(log, running);
      }
    }
    this.#settle(log, waiters, failure);
    if (this.#waiters.has(log)) void this.#syncFor(log);
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
