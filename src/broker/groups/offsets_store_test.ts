// OffsetsStore over an in-memory OffsetsLog: what a commit checks before
// writing, that memory follows only durable records, and that a store
// reading the same log back sees the latest record per key.
import assert from "node:assert/strict";
import type { Record, RecordInput } from "../../protocol/mod.ts";
import { GroupError } from "./group_error.ts";
import type { OffsetsLog } from "./offsets_log.ts";
import { type CommitTopics, OffsetsStore } from "./offsets_store.ts";

/** One array of records per partition; an append can be made to fail. */
class MemoryOffsetsLog implements OffsetsLog {
  readonly partitionCount = 2;
  failing = false;
  readonly #records: Record[][] = [[], []];
  append(partition: number, records: readonly RecordInput[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error("Log is unavailable"));
    const log = this.#records[partition]!;
    for (const r of records) {
      log.push({
        offset: BigInt(log.length),
        timestamp: 0n,
        key: r.key ?? null,
        value: r.value,
        headers: [],
      });
    }
    return Promise.resolve();
  }
  read(partition: number): Iterable<Record> {
    return this.#records[partition]!;
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
