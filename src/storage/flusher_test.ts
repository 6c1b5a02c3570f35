// Flusher over real partition logs in temporary directories. Syncs are
// counted through the onSync hook, never by timing.
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { Flusher, type SyncableLog } from "./flusher.ts";
import { PartitionLog } from "./partition_log.ts";
import { makeBatch, makeRecordSet } from "./testing.ts";

function withLogs(
  count: number,
  fn: (logs: PartitionLog[]) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "raftq-flusher-" });
    const logs: PartitionLog[] = [];
    try {
      for (let i = 0; i < count; i++) {
        logs.push(PartitionLog.open(`${dir}/t-${i}`));
      }
      await fn(logs);
    } finally {
      for (const log of logs) log.close();
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

function appendOne(log: PartitionLog): bigint {
  const { records, headers } = makeRecordSet([makeBatch({ records: 2 })]);
  return log.append(records, headers).lastOffset;
}

function syncCounter(): { counts: Map<SyncableLog, number>; total(): number } {
  const counts = new Map<SyncableLog, number>();
  return {
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
  };
}

Deno.test(
  "Flusher.durable coalesces the waiters of one turn into one sync per log",
  withLogs(3, async (logs) => {
    const syncs = syncCounter();
    const flusher = new Flusher({
      onSync: (log) => syncs.counts.set(log, (syncs.counts.get(log) ?? 0) + 1),
    });
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      const log = logs[i % 3]!;
      waits.push(flusher.durable(log, appendOne(log)));
    }
    await Promise.all(waits);
    assert.equal(syncs.total(), 3);
    for (const log of logs) {
      assert.equal(syncs.counts.get(log), 1);
      assert.equal(log.durableEndOffset, 20n);
    }
    // A later turn gets its own pass.
    await flusher.durable(logs[0]!, appendOne(logs[0]!));
    assert.equal(syncs.total(), 4);
    flusher.close();
  }),
);

Deno.test(
  "Flusher.durable resolves without a sync when the offset is already durable",
  withLogs(1, async ([log]) => {
    let syncs = 0;
    const flusher = new Flusher({ onSync: () => syncs++ });
    const last = appendOne(log!);
    log!.sync();
    await flusher.durable(log!, last);
    assert.equal(syncs, 0);
    flusher.close();
  }),
);

Deno.test(
  "Flusher.durable rejects an offset the log never reached",
  withLogs(1, async ([log]) => {
    const flusher = new Flusher();
    appendOne(log!);
    await assert.rejects(flusher.durable(log!, 5n), RangeError);
    flusher.close();
  }),
);

Deno.test("Flusher.durable rejects every waiter of a log whose sync fails", async () => {
  const failing: SyncableLog = {
    durableEndOffset: 0n,
    sync() {
      throw new Error("disk gone");
    },
    syncAsync() {
      return Promise.reject(new Error("disk gone"));
    },
  };
  const flusher = new Flusher();
  const results = await Promise.allSettled([
    flusher.durable(failing, 0n),
    flusher.durable(failing, 1n),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  flusher.close();
});

Deno.test(
  "Flusher with the interval policy resolves at once and leaves the sync to its timer or close",
  withLogs(2, async (logs) => {
    let syncs = 0;
    const flusher = new Flusher({
      policy: { mode: "interval", intervalMs: 60_000 },
      onSync: () => syncs++,
    });
    for (const log of logs) await flusher.durable(log, appendOne(log));
    assert.equal(syncs, 0);
    assert.equal(logs[0]!.durableEndOffset, 0n);
    flusher.close();
    assert.equal(syncs, 2);
    assert.equal(logs[0]!.durableEndOffset, 2n);
  }),
);

Deno.test("Flusher rejects a non-positive flush interval", () => {
  assert.throws(
    () => new Flusher({ policy: { mode: "interval", intervalMs: 0 } }),
    /intervalMs .*: got 0/,
  );
});

Deno.test(
  "Flusher.close settles pending waiters with a final pass",
  withLogs(1, async ([log]) => {
    let syncs = 0;
    const flusher = new Flusher({ onSync: () => syncs++ });
    const wait = flusher.durable(log!, appendOne(log!));
    flusher.close();
    await wait;
    assert.equal(syncs, 1);
    assert.equal(log!.durableEndOffset, 2n);
  }),
);

Deno.test(
  "Flusher.forget settles waiters on what is durable and skips the log afterwards",
  withLogs(1, async ([log]) => {
    let syncs = 0;
    const flusher = new Flusher({ onSync: () => syncs++ });
    const wait = flusher.durable(log!, appendOne(log!));
    log!.sync();
    flusher.forget(log!);
    await wait;
    flusher.close();
    assert.equal(syncs, 0);
  }),
);

Deno.test(
  "Flusher.durable queues waiters that arrive during a sync for one next sync",
  withLogs(1, async ([log]) => {
    // The real log, its syncs held back until the gate opens, so the test
    // sees when syncs start without timing anything.
    const gate = Promise.withResolvers<void>();
    let started = 0;
    const gated: SyncableLog = {
      get durableEndOffset() {
        return log!.durableEndOffset;
      },
      sync: () => log!.sync(),
      syncAsync() {
        started++;
        const syncing = log!.syncAsync();
        return gate.promise.then(() => syncing);
      },
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const flusher = new Flusher();
    const first = flusher.durable(gated, appendOne(log!));
    await turn();
    assert.equal(started, 1);
    // Appended while the first sync runs: it cannot cover them.
    const later = [
      flusher.durable(gated, appendOne(log!)),
      flusher.durable(gated, appendOne(log!)),
    ];
    await turn();
    assert.equal(started, 1);
    gate.resolve();
    await first;
    assert.equal(log!.durableEndOffset, 2n);
    await Promise.all(later);
    assert.equal(started, 2);
    assert.equal(log!.durableEndOffset, 6n);
    flusher.close();
  }),
);
