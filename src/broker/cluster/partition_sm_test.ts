/**
 * Goal: a replica restored from a snapshot that names offsets its log lacks
 * refuses to be snapshotted until it has copied them, so that a snapshot
 * never claims data the replica does not hold; a merged produce entry is
 * applied set by set, each with its own outcome; a DeleteRecords entry moves
 * the log start of every replica that applies it, and a snapshot carries
 * the start to a replica that missed the entry. Method: real partition
 * logs in temp dirs; one applies entries and snapshots, the other restores
 * that snapshot, applies a later entry behind the gap, then fills it.
 */
import assert from "node:assert/strict";
import { EntryType } from "../../raft/mod.ts";
import { buildRecordBatch } from "../../protocol/mod.ts";
import type { AppendOutcome, PartitionManager } from "../partitions.ts";
import { testPartitionManager } from "../testing.ts";
import { ProducerSequenceError } from "../producers/producer_state.ts";
import {
  decodePartitionSnapshot,
  decodeProduceEntry,
  encodeDeleteRecordsEntry,
  encodePartitionSnapshot,
  encodeProduceEntries,
  encodeProduceEntry,
  PartitionStateMachine,
} from "./partition_sm.ts";

function manager(dir: string): PartitionManager {
  return testPartitionManager(dir);
}

function batch(
  value: string,
  opts: { producerId?: bigint; baseSequence?: number } = {},
): Uint8Array {
  return buildRecordBatch([{ value: new TextEncoder().encode(value) }], {
    ...opts,
    producerEpoch: 0,
  });
}

function produceEntry(index: number, value: string) {
  return {
    term: 1,
    index,
    type: EntryType.Normal,
    data: encodeProduceEntry(batch(value)),
  };
}

Deno.test("PartitionStateMachine refuses snapshots while a restored gap is open", () => {
  const dirs = [Deno.makeTempDirSync(), Deno.makeTempDirSync()];
  try {
    const [leaderManager, replicaManager] = dirs.map(manager);
    const open = (
      m: PartitionManager,
      onGap: (from: bigint, to: bigint) => void = () => {},
    ) =>
      new PartitionStateMachine(
        m.openPartition({ name: "t", configs: {} }, 0),
        { manager: m, onGap },
      );
    const leader = open(leaderManager!);
    leader.apply([1, 2, 3].map((i) => produceEntry(i, `v${i}`)));
    assert.equal(leader.snapshotReady(), true);
    const snapshot = leader.snapshot();

    const gaps: [bigint, bigint][] = [];
    const replica = open(replicaManager!, (from, to) => gaps.push([from, to]));
    replica.restore(snapshot);
    assert.deepEqual(gaps, [[0n, 3n]]);
    assert.equal(replica.snapshotReady(), false);
    // An entry committed after the snapshot waits behind the gap.
    replica.apply([produceEntry(4, "v4")]);
    assert.equal(replica.snapshotReady(), false);
    assert.equal(replica.partition.log.logEndOffset, 0n);

    const copied = new Uint8Array([
      ...batch("v1"),
      ...batch("v2"),
      ...batch("v3"),
    ]);
    assert.equal(replica.fillGap(copied), true);
    assert.equal(replica.snapshotReady(), true);
    assert.equal(replica.partition.log.logEndOffset, 4n);
  } finally {
    for (const d of dirs) Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("PartitionStateMachine.apply gives each set of a merged entry its own outcome", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const m = manager(dir);
    const sm = new PartitionStateMachine(
      m.openPartition({ name: "t", configs: {} }, 0),
      { manager: m, onGap: () => {} },
    );
    const first = batch("a", { producerId: 7n, baseSequence: 0 });
    const sets = [
      first,
      first, // a retry: a duplicate, answered with the first one's offsets
      batch("gap", { producerId: 7n, baseSequence: 5 }), // out of sequence
      batch("c"),
    ];
    const merged = encodeProduceEntries(sets);
    assert.deepEqual(decodeProduceEntry(merged), sets);
    // A single set keeps the old entry kind, which still decodes.
    assert.deepEqual(encodeProduceEntries([first]), encodeProduceEntry(first));
    const [single, outcomes] = sm.apply([
      produceEntry(1, "x"),
      { term: 1, index: 2, type: EntryType.Normal, data: merged },
    ]) as (AppendOutcome[] | null)[];
    assert.deepEqual(single, [{ ok: true, baseOffset: 0n, lastOffset: 0n }]);
    assert.equal(outcomes?.length, 4);
    assert.deepEqual(outcomes?.[0], {
      ok: true,
      baseOffset: 1n,
      lastOffset: 1n,
    });
    assert.deepEqual(outcomes?.[1], outcomes?.[0]);
    assert.ok(
      outcomes?.[2]?.ok === false &&
        outcomes[2].error instanceof ProducerSequenceError,
    );
    assert.deepEqual(outcomes?.[3], {
      ok: true,
      baseOffset: 2n,
      lastOffset: 2n,
    });
    assert.equal(sm.partition.log.logEndOffset, 3n);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PartitionStateMachine syncs its log in the background once 4 MiB are unsynced", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const m = manager(dir);
    const partition = m.openPartition({ name: "t", configs: {} }, 0);
    const sm = new PartitionStateMachine(partition, {
      manager: m,
      onGap: () => {},
    });
    const value = "x".repeat(512 * 1024);
    sm.apply([1, 2].map((i) => produceEntry(i, value)));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(partition.log.durableEndOffset, 0n, "1 MiB waits");
    sm.apply([3, 4, 5, 6, 7, 8, 9, 10].map((i) => produceEntry(i, value)));
    const deadline = Date.now() + 5_000;
    while (partition.log.durableEndOffset === 0n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(partition.log.durableEndOffset, 10n);
    m.closeAll();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PartitionStateMachine.durableSnapshot answers the state as of its last finished background sync, never the present one, and none from before a restore", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const m = manager(dir);
    const sm = openSm(m);
    const log = sm.partition.log;
    const settled = async (after: number) => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const s = sm.durableSnapshot(after);
        if (s !== null) return s;
        assert.ok(Date.now() < deadline, "no durable snapshot within 5 s");
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    sm.apply([1, 2, 3].map((i) => produceEntry(i, `v${i}`)));
    // Nothing synced yet: asking starts a sync of the state at index 3.
    assert.equal(sm.durableSnapshot(0), null);
    sm.apply([produceEntry(4, "v4")]);
    const first = await settled(0);
    assert.equal(first.index, 3);
    assert.deepEqual(decodePartitionSnapshot(first.data), {
      index: 3,
      logStartOffset: 0n,
      logEndOffset: 3n,
    });
    assert.ok(log.durableEndOffset >= 3n);
    assert.equal(sm.durableSnapshot(3), null, "none newer than index 3 yet");
    assert.equal((await settled(3)).index, 4);

    // A restore cuts the log back: the sync begun before it proves nothing.
    sm.apply([produceEntry(5, "v5")]);
    assert.equal(sm.durableSnapshot(4), null);
    sm.restore(
      encodePartitionSnapshot({
        index: 4,
        logStartOffset: 0n,
        logEndOffset: 4n,
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(log.logEndOffset, 4n);
    assert.equal(sm.durableSnapshot(4), null, "index 5 was cut back");
    sm.apply([produceEntry(5, "w5"), produceEntry(6, "w6")]);
    const again = await settled(4);
    assert.deepEqual(decodePartitionSnapshot(again.data), {
      index: 6,
      logStartOffset: 0n,
      logEndOffset: 6n,
    });
    m.closeAll();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function deleteRecordsEntry(index: number, beforeOffset: bigint) {
  return {
    term: 1,
    index,
    type: EntryType.Normal,
    data: encodeDeleteRecordsEntry(beforeOffset),
  };
}

function openSm(
  m: PartitionManager,
  onGap: (from: bigint, to: bigint) => void = () => {},
): PartitionStateMachine {
  return new PartitionStateMachine(
    m.openPartition({ name: "t", configs: {} }, 0),
    { manager: m, onGap },
  );
}

Deno.test("PartitionStateMachine.apply of a DeleteRecords entry moves the log start where it falls among the appends, on every replay", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const entries = () => [
      produceEntry(1, "a"),
      produceEntry(2, "b"),
      deleteRecordsEntry(3, 2n),
      produceEntry(4, "c"),
      deleteRecordsEntry(5, 1n), // below the start: changes nothing
    ];
    const first = manager(dir);
    const results = openSm(first).apply(entries());
    assert.deepEqual(results.slice(2).filter((r) => typeof r === "bigint"), [
      2n,
      2n,
    ]);
    first.closeAll();
    // A restart without a snapshot empties the log and replays the WAL:
    // the start comes back at the same place.
    const replayed = openSm(manager(dir));
    replayed.apply(entries());
    const log = replayed.partition.log;
    assert.equal(log.logStartOffset, 2n);
    assert.equal(log.logEndOffset, 3n);
    assert.throws(() => log.read(1n, { maxBytes: 1024 }), /out of range/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PartitionStateMachine.restore takes the snapshot's log start, restarting a replica whose log ends below it", () => {
  const dirs = [0, 1, 2].map(() => Deno.makeTempDirSync());
  try {
    const [leaderManager, behindManager, fullManager] = dirs.map(manager);
    const leader = openSm(leaderManager!);
    const produced = [1, 2, 3, 4].map((i) => produceEntry(i, `v${i}`));
    leader.apply(produced.map((e) => ({ ...e, data: e.data.slice() })));
    leader.apply([deleteRecordsEntry(5, 3n)]);
    const snapshot = leader.snapshot();

    const gaps: [bigint, bigint][] = [];
    const behind = openSm(behindManager!, (from, to) => gaps.push([from, to]));
    behind.apply([produceEntry(1, "v1")]);
    behind.restore(snapshot);
    // The leader no longer holds 1 and 2: only 3 is asked for.
    assert.deepEqual(gaps, [[3n, 4n]]);
    assert.equal(behind.fillGap(batch("v4")), true);
    assert.equal(behind.partition.log.logStartOffset, 3n);
    assert.equal(behind.partition.log.logEndOffset, 4n);

    const full = openSm(fullManager!, () => assert.fail("no gap expected"));
    full.apply(produced);
    full.restore(snapshot);
    assert.equal(full.partition.log.logStartOffset, 3n);
    assert.equal(full.partition.log.logEndOffset, 4n);
  } finally {
    for (const d of dirs) Deno.removeSync(d, { recursive: true });
  }
});
