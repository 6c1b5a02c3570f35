// OffsetsStore over an in-memory OffsetsLog: what a commit checks before
// writing, that memory follows only durable records, and that a store
// reading the same log back sees the latest record per key.
import assert from "node:assert/strict";
import type { RecordInput } from "../../protocol/mod.ts";
import { GroupError } from "./group_error.ts";
import type { LogEntry, LogTransaction, OffsetsLog } from "./offsets_log.ts";
import { type CommitTopics, OffsetsStore } from "./offsets_store.ts";

/** One array of entries per partition; an append can be made to fail. */
class MemoryOffsetsLog implements OffsetsLog {
  readonly partitionCount = 2;
  failing = false;
  readonly #entries: LogEntry[][] = [[], []];
  append(
    partition: number,
    records: readonly RecordInput[],
    txn?: LogTransaction,
  ): Promise<void> {
    if (this.failing) return Promise.reject(new Error("Log is unavailable"));
    const log = this.#entries[partition]!;
    for (const r of records) {
      const record = {
        offset: BigInt(log.length),
        timestamp: 0n,
        key: r.key ?? null,
        value: r.value,
        headers: [],
      };
      log.push({ kind: "record", record, producerId: txn?.producerId ?? null });
    }
    return Promise.resolve();
  }
  /** A transaction marker, as the transaction coordinator writes it. */
  mark(partition: number, marker: Omit<LogEntry & { kind: "marker" }, "kind">) {
    this.#entries[partition]!.push({ kind: "marker", ...marker });
  }
  read(partition: number): Iterable<LogEntry> {
    return this.#entries[partition]!;
  }
}

function openStore(log: OffsetsLog, clock = { nowMs: 1_000_000 }) {
  return new OffsetsStore({
    log,
    // "g…" on partition 0, every other group on 1.
    partitionFor: (groupId) => groupId.startsWith("g") ? 0 : 1,
    now: () => clock.nowMs,
    offsetsRetentionMs: 60_000,
    partitionExists: (topic, partition) => topic === "t" && partition < 2,
  });
}

function topics(
  ...partitions: { index: number; offset: bigint; metadata?: string }[]
): CommitTopics {
  return [{
    name: "t",
    partitions: partitions.map((p) => ({
      partitionIndex: p.index,
      committedOffset: p.offset,
      committedLeaderEpoch: -1,
      committedMetadata: p.metadata ?? null,
    })),
  }];
}

const offsetsOf = (store: OffsetsStore, groupId: string) =>
  store.fetch(groupId, [{ name: "t", partitionIndexes: [0, 1] }])[0]!
    .partitions.map((p) => p.committedOffset);

Deno.test("OffsetsStore.commit rejects unknown partitions and oversized metadata", async () => {
  const store = openStore(new MemoryOffsetsLog());
  const answer = await store.commit(
    "g",
    topics(
      { index: 0, offset: 3n },
      { index: 1, offset: 4n, metadata: "x".repeat(4097) },
      { index: 2, offset: 5n },
    ),
  );
  assert.deepEqual(answer[0]!.partitions.map((p) => p.errorCode), [
    GroupError.NONE,
    GroupError.OFFSET_METADATA_TOO_LARGE,
    GroupError.UNKNOWN_TOPIC_OR_PARTITION,
  ]);
  assert.deepEqual(offsetsOf(store, "g"), [3n, -1n]);
});

Deno.test("OffsetsStore.commit keeps nothing when the log refuses the records", async () => {
  const log = new MemoryOffsetsLog();
  const store = openStore(log);
  log.failing = true;
  const answer = await store.commit("g", topics({ index: 0, offset: 3n }));
  assert.equal(
    answer[0]!.partitions[0]!.errorCode,
    GroupError.COORDINATOR_NOT_AVAILABLE,
  );
  assert.equal(store.has("g"), false);
});

Deno.test("OffsetsStore.load rebuilds the latest offsets and groups of one partition", async () => {
  const log = new MemoryOffsetsLog();
  const first = openStore(log);
  await first.commit("g", topics({ index: 0, offset: 1n }));
  await first.commit("g", topics({ index: 0, offset: 2n }));
  await first.commit("other", topics({ index: 1, offset: 9n }));
  await first.writeGroup("g", {
    protocolType: "consumer",
    generationId: 4,
    protocolName: "range",
    leaderId: null,
    members: [],
  });
  await first.commit("gone", topics({ index: 1, offset: 7n }));
  await first.deleteGroup("gone");

  const second = openStore(log);
  const groups = second.load(0);
  assert.deepEqual([...groups.keys()], ["g"]);
  assert.equal(groups.get("g")!.generationId, 4);
  assert.deepEqual(offsetsOf(second, "g"), [2n, -1n]);
  assert.deepEqual([...second.groupIds()], ["g"], "partition 1 not loaded");
  second.load(1);
  assert.deepEqual([...second.groupIds()].sort(), ["g", "other"]);
  second.unload(0);
  assert.deepEqual([...second.groupIds()], ["other"]);
});

Deno.test("OffsetsStore.expire drops old offsets of eligible groups only", async () => {
  const log = new MemoryOffsetsLog();
  const clock = { nowMs: 1_000_000 };
  const store = openStore(log, clock);
  await store.commit("g-old", topics({ index: 0, offset: 1n }));
  await store.commit("g-busy", topics({ index: 0, offset: 1n }));
  clock.nowMs += 50_000;
  await store.commit("g-new", topics({ index: 0, offset: 1n }));
  clock.nowMs += 20_000;
  assert.equal(await store.expire((groupId) => groupId !== "g-busy"), 1);
  assert.deepEqual([...store.groupIds()].sort(), ["g-busy", "g-new"]);
  // The tombstone is in the log: a store reading it back agrees.
  const reread = openStore(log);
  reread.load(0);
  assert.deepEqual([...reread.groupIds()].sort(), ["g-busy", "g-new"]);
});

Deno.test("OffsetsStore.commit in a transaction shows its offsets only once the transaction commits", async () => {
  const log = new MemoryOffsetsLog();
  const store = openStore(log);
  const txn = { producerId: 42n, producerEpoch: 3 };
  await store.commit("g", topics({ index: 0, offset: 1n }));
  await store.commit("g", topics({ index: 0, offset: 5n }), txn);
  await store.commit("g", topics({ index: 1, offset: 6n }), txn);
  await store.commit("g-aborted", topics({ index: 0, offset: 9n }), {
    producerId: 43n,
    producerEpoch: 0,
  });
  assert.deepEqual(offsetsOf(store, "g"), [1n, -1n]);
  // Another partition's marker, or another producer's, changes nothing.
  store.endTransaction(1, { producerId: 42n, result: "commit" });
  store.endTransaction(0, { producerId: 7n, result: "commit" });
  assert.deepEqual(offsetsOf(store, "g"), [1n, -1n]);
  log.mark(0, { producerId: 42n, result: "commit" });
  store.endTransaction(0, { producerId: 42n, result: "commit" });
  assert.deepEqual(offsetsOf(store, "g"), [5n, 6n]);
  log.mark(0, { producerId: 43n, result: "abort" });
  store.endTransaction(0, { producerId: 43n, result: "abort" });
  assert.equal(store.has("g-aborted"), false);

  // Read back: the commit and the abort are replayed from their markers,
  // and a transaction still open stays pending until its marker.
  await store.commit("g", topics({ index: 1, offset: 8n }), {
    producerId: 44n,
    producerEpoch: 0,
  });
  const reread = openStore(log);
  reread.load(0);
  assert.deepEqual(offsetsOf(reread, "g"), [5n, 6n]);
  assert.equal(reread.has("g-aborted"), false);
  reread.endTransaction(0, { producerId: 44n, result: "commit" });
  assert.deepEqual(offsetsOf(reread, "g"), [5n, 8n]);
});

Deno.test("OffsetsStore.fetch with requireStable answers UNSTABLE_OFFSET_COMMIT for partitions an open transaction committed to", async () => {
  const store = openStore(new MemoryOffsetsLog());
  await store.commit(
    "g",
    topics({ index: 0, offset: 1n }, { index: 1, offset: 2n }),
  );
  await store.commit("g", topics({ index: 1, offset: 7n }), {
    producerId: 42n,
    producerEpoch: 0,
  });
  const stable = (requireStable: boolean) =>
    store.fetch("g", [{ name: "t", partitionIndexes: [0, 1] }], {
      requireStable,
    })[0]!.partitions.map((p) => [p.committedOffset, p.errorCode]);
  assert.deepEqual(stable(true), [
    [1n, GroupError.NONE],
    [-1n, GroupError.UNSTABLE_OFFSET_COMMIT],
  ]);
  // Without it a reader sees the last committed offset, as before KIP-447.
  assert.deepEqual(stable(false), [[1n, GroupError.NONE], [
    2n,
    GroupError.NONE,
  ]]);
  store.endTransaction(0, { producerId: 42n, result: "commit" });
  assert.deepEqual(stable(true), [[1n, GroupError.NONE], [
    7n,
    GroupError.NONE,
  ]]);
});
