// TxnCoordinator on real partition logs with a hand-moved clock: whole
// transactions committed and aborted with their markers read back from the
// data partitions, markers that fail and are retried, zombies fenced, a
// timed-out transaction aborted, and a state partition read back by a new
// coordinator that finishes what the old one had decided. Markers to a
// partition led elsewhere go through a second broker's marker writer.
import assert from "node:assert/strict";
import { decodeBatches, ErrorCode, Reader } from "../../protocol/mod.ts";
import { OFFSETS_TOPIC, PartitionOffsetsLog } from "../groups/offsets_log.ts";
import { ManualTimers } from "../groups/testing.ts";
import type { Partition, PartitionManager } from "../partitions.ts";
import type { RpcHandler } from "../cluster/rpc.ts";
import { testPartitionManager } from "../testing.ts";
import {
  type InitAnswer,
  TXN_STATE_TOPIC,
  TxnCoordinator,
} from "./txn_coordinator.ts";
import {
  ClusterMarkerWriter,
  type MarkerCluster,
  type MarkerWriter,
} from "./txn_markers.ts";
import { encodeMarkerBatch, markerOf } from "./marker_batch.ts";

const STATE_PARTITIONS = 3;
const ID = "tx-1";

/** The partitions one broker leads; writes are durable at once. */
function clusterOf(
  partitions: PartitionManager,
  led: (topic: string) => boolean,
): MarkerCluster {
  return {
    leading: (topic, index) => {
      const partition = partitions.get(topic, index);
      if (partition === undefined) {
        return { ok: false, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
      }
      return led(topic) ? { ok: true, partition } : {
        ok: false,
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        leader: { leaderId: 2, leaderEpoch: 1 },
      };
    },
    write: (partition, records) => {
      const outcome = partitions.append(partition, records);
      if (outcome.ok) {
        partition.advanceHighWatermark(partition.log.logEndOffset);
      }
      return Promise.resolve(outcome);
    },
  };
}

interface Setup {
  partitions: PartitionManager;
  timers: ManualTimers;
  /** Markers written through broker 1, which leads all but topic "r". */
  markers: MarkerWriter;
  open(
    opts?: {
      markers?: MarkerWriter;
      owns?: (p: number) => boolean;
      limits?: { maxOpen: number; maxPartitions: number };
      warn?: (message: string) => void;
    },
  ): TxnCoordinator;
}

async function withSetup(fn: (s: Setup) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftq-txn-" });
  const partitions = testPartitionManager(dir);
  for (let i = 0; i < STATE_PARTITIONS; i++) {
    partitions.openPartition({ name: TXN_STATE_TOPIC, configs: {} }, i);
  }
  for (const name of ["t", "r", OFFSETS_TOPIC]) {
    for (let i = 0; i < 2; i++) {
      partitions.openPartition({ name, configs: {} }, i);
    }
  }
  const local = clusterOf(partitions, (topic) => topic !== "r");
  // Broker 2 leads "r"; broker 1 reaches it over the RPC channel.
  const served = new Map<number, RpcHandler>();
  new ClusterMarkerWriter(clusterOf(partitions, (t) => t === "r"), {
    serveRpc: (method, handler) => served.set(method, handler),
    requestRpc: () => Promise.reject(new Error("broker 2 asks nobody")),
  });
  const markers = new ClusterMarkerWriter(local, {
    serveRpc: () => {},
    requestRpc: (to, method, body) => {
      assert.equal(to, 2);
      return served.get(method)!(1, body);
    },
  });
  const timers = new ManualTimers();
  let nextProducerId = 1000n;
  const coordinators: TxnCoordinator[] = [];
  const open: Setup["open"] = (opts = {}) => {
    const c = new TxnCoordinator({
      log: new PartitionOffsetsLog(local, {
        partitionCount: STATE_PARTITIONS,
        topic: TXN_STATE_TOPIC,
      }),
      markers: opts.markers ?? markers,
      producerIds: { next: () => Promise.resolve(nextProducerId++) },
      timers,
      maxTimeoutMs: 900_000,
      limits: opts.limits ?? { maxOpen: 100, maxPartitions: 100 },
      idExpirationMs: 3_600_000,
      offsetsPartitionFor: () => 1,
      coordinatorEpoch: () => 7,
      ...(opts.owns === undefined ? {} : { owns: opts.owns }),
      warn: opts.warn ?? (() => {}),
    });
    for (let i = 0; i < STATE_PARTITIONS; i++) c.load(i);
    coordinators.push(c);
    return c;
  };
  try {
    await fn({ partitions, timers, markers, open });
  } finally {
    for (const c of coordinators) c.close();
    partitions.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The markers in a partition: producer, epoch and type (1 commit). */
function markersIn(p: Partition) {
  const bytes = p.log.read(p.log.logStartOffset, { maxBytes: 1 << 20 });
  return decodeBatches(bytes).flatMap((batch) => {
    const { header, records } = batch;
    if ((header.attributes & 0x30) !== 0x30) return [];
    const value = new Reader(records[0]!.value!);
    assert.equal(value.int16(), 0);
    assert.equal(value.int32(), 7, "the coordinator epoch");
    return [{
      producerId: header.producerId,
      epoch: header.producerEpoch,
      type: markerOf(batch)?.result === "commit" ? 1 : 0,
    }];
  });
}

function init(
  c: TxnCoordinator,
  opts: { timeoutMs?: number; expected?: InitAnswer } = {},
) {
  return c.initProducerId({
    transactionalId: ID,
    timeoutMs: opts.timeoutMs ?? 60_000,
    expected: opts.expected === undefined ? null : {
      producerId: opts.expected.producerId,
      producerEpoch: opts.expected.producerEpoch,
    },
  });
}

const as = (p: InitAnswer) => ({
  transactionalId: ID,
  producerId: p.producerId,
  producerEpoch: p.producerEpoch,
});

const T01 = [{ topic: "t", partitions: [0, 1] }];

Deno.test("TxnCoordinator commits: markers in every partition, then CompleteCommit", async () => {
  await withSetup(async ({ partitions, open }) => {
    const c = open();
    const p = await init(c);
    assert.deepEqual(p, { errorCode: 0, producerId: 1000n, producerEpoch: 0 });
    assert.equal(await c.addPartitions({ ...as(p), partitions: T01 }), 0);
    assert.equal(
      await c.addPartitions({
        ...as(p),
        partitions: [{ topic: "r", partitions: [0] }],
      }),
      0,
    );
    assert.equal(await c.addOffsets({ ...as(p), groupId: "g" }), 0);
    assert.equal(c.state(ID)?.state, "Ongoing");
    assert.equal(await c.endTxn({ ...as(p), result: "commit" }), 0);
    const commit = [{ producerId: 1000n, epoch: 0, type: 1 }];
    for (const [topic, index] of [["t", 0], ["t", 1], ["r", 0]] as const) {
      assert.deepEqual(markersIn(partitions.get(topic, index)!), commit);
    }
    assert.deepEqual(markersIn(partitions.get(OFFSETS_TOPIC, 1)!), commit);
    assert.deepEqual(markersIn(partitions.get("r", 1)!), []);
    assert.equal(c.state(ID)?.state, "CompleteCommit");
    assert.deepEqual(c.state(ID)?.partitions, []);
    // A retry whose answer was lost; the other outcome is refused.
    assert.equal(await c.endTxn({ ...as(p), result: "commit" }), 0);
    assert.equal(
      await c.endTxn({ ...as(p), result: "abort" }),
      ErrorCode.INVALID_TXN_STATE,
    );
    // Another coordinator reads the same state back from the log.
    assert.deepEqual(open().state(ID), c.state(ID));
  });
});

Deno.test("TxnCoordinator retries markers that fail and holds the id meanwhile", async () => {
  await withSetup(async ({ partitions, timers, markers, open }) => {
    let failures = 2;
    const flaky: MarkerWriter = {
      write: (topic, index, marker) =>
        topic === "t" && index === 1 && failures-- > 0
          ? Promise.resolve(ErrorCode.NOT_LEADER_OR_FOLLOWER)
          : markers.write(topic, index, marker),
    };
    const c = open({ markers: flaky });
    const p = await init(c);
    await c.addPartitions({ ...as(p), partitions: T01 });
    // The outcome is durable: the client is told so at once.
    assert.equal(await c.endTxn({ ...as(p), result: "abort" }), 0);
    assert.equal(c.state(ID)?.state, "PrepareAbort");
    // DescribeTransactions shows only the partition still without a marker.
    const preparing = c.describe(ID);
    assert.equal(preparing.txn?.state, "PrepareAbort");
    assert.deepEqual(preparing.txn?.partitions, [
      { topic: "t", partitions: [1] },
    ]);
    assert.equal(
      await c.addPartitions({ ...as(p), partitions: T01 }),
      ErrorCode.CONCURRENT_TRANSACTIONS,
    );
    assert.equal(
      await c.endTxn({ ...as(p), result: "abort" }),
      ErrorCode.CONCURRENT_TRANSACTIONS,
    );
    await timers.advance(500);
    assert.equal(c.state(ID)?.state, "PrepareAbort");
    await timers.advance(500);
    assert.equal(c.state(ID)?.state, "CompleteAbort");
    assert.deepEqual(c.describe(ID).txn?.partitions, []);
    const abort = [{ producerId: 1000n, epoch: 0, type: 0 }];
    // Partition 0 got its marker once, at the first try.
    assert.deepEqual(markersIn(partitions.get("t", 0)!), abort);
    assert.deepEqual(markersIn(partitions.get("t", 1)!), abort);
  });
});

Deno.test("TxnCoordinator fences a zombie: a new producer aborts its open transaction", async () => {
  await withSetup(async ({ partitions, open }) => {
    const c = open();
    const zombie = await init(c);
    await c.addPartitions({ ...as(zombie), partitions: T01 });
    const first = await init(c);
    assert.equal(first.errorCode, ErrorCode.CONCURRENT_TRANSACTIONS);
    assert.equal(c.state(ID)?.state, "CompleteAbort");
    assert.deepEqual(markersIn(partitions.get("t", 0)!), [
      { producerId: 1000n, epoch: 1, type: 0 },
    ]);
    const fresh = await init(c);
    assert.deepEqual(fresh, {
      errorCode: 0,
      producerId: 1000n,
      producerEpoch: 2,
    });
    assert.equal(
      await c.endTxn({ ...as(zombie), result: "commit" }),
      ErrorCode.PRODUCER_FENCED,
    );
    assert.equal(
      await c.addPartitions({ ...as(zombie), partitions: T01 }),
      ErrorCode.PRODUCER_FENCED,
    );
    // KIP-360: the zombie cannot take the id back by naming its epoch.
    assert.equal(
      (await init(c, { expected: zombie })).errorCode,
      ErrorCode.PRODUCER_FENCED,
    );
    // The producer that holds it can, after an error of its own.
    const bumped = await init(c, { expected: fresh });
    assert.equal(bumped.producerEpoch, 3);
  });
});

Deno.test("TxnCoordinator.abortTimedOut aborts transactions past their timeout", async () => {
  await withSetup(async ({ partitions, timers, open }) => {
    const c = open();
    const p = await init(c, { timeoutMs: 1_000 });
    await c.addPartitions({ ...as(p), partitions: T01 });
    await timers.advance(999);
    assert.equal(await c.abortTimedOut(), 0);
    await timers.advance(1);
    assert.equal(await c.abortTimedOut(), 1);
    assert.equal(c.state(ID)?.state, "CompleteAbort");
    assert.deepEqual(markersIn(partitions.get("t", 1)!), [
      { producerId: 1000n, epoch: 1, type: 0 },
    ]);
    // The stalled producer finds itself fenced.
    assert.equal(
      await c.endTxn({ ...as(p), result: "commit" }),
      ErrorCode.PRODUCER_FENCED,
    );
  });
});

Deno.test("TxnCoordinator.load finishes a transaction decided by the previous coordinator", async () => {
  await withSetup(async ({ partitions, open }) => {
    const down: MarkerWriter = {
      write: () => Promise.resolve(ErrorCode.REQUEST_TIMED_OUT),
    };
    const old = open({ markers: down });
    const p = await init(old);
    await old.addPartitions({ ...as(p), partitions: T01 });
    assert.equal(await old.endTxn({ ...as(p), result: "commit" }), 0);
    assert.equal(old.state(ID)?.state, "PrepareCommit");
    old.unload(old.partitionFor(ID));
    assert.equal(old.state(ID), undefined);
    const next = open();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(next.state(ID)?.state, "CompleteCommit");
    assert.deepEqual(markersIn(partitions.get("t", 0)!), [
      { producerId: 1000n, epoch: 0, type: 1 },
    ]);
  });
});

Deno.test("TxnCoordinator refuses what it does not coordinate and bad requests", async () => {
  await withSetup(async ({ open }) => {
    const elsewhere = open({ owns: () => false });
    assert.equal((await init(elsewhere)).errorCode, ErrorCode.NOT_COORDINATOR);
    const c = open();
    c.unload(c.partitionFor(ID));
    assert.equal(
      (await init(c)).errorCode,
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
    c.load(c.partitionFor(ID));
    assert.equal(
      (await init(c, { timeoutMs: 900_001 })).errorCode,
      ErrorCode.INVALID_TRANSACTION_TIMEOUT,
    );
    assert.equal(
      (await c.initProducerId({
        transactionalId: "",
        timeoutMs: 1_000,
        expected: null,
      })).errorCode,
      ErrorCode.INVALID_REQUEST,
    );
    assert.equal(
      await c.addPartitions({
        transactionalId: "unknown",
        producerId: 1n,
        producerEpoch: 0,
        partitions: T01,
      }),
      ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    );
    const p = await init(c);
    assert.equal(
      await c.endTxn({ ...as(p), result: "commit" }),
      ErrorCode.INVALID_TXN_STATE,
    );
  });
});

Deno.test("TxnCoordinator.list filters by state, producer id and time open, and waits for state partitions still loading", async () => {
  await withSetup(async ({ timers, open }) => {
    let loaded = true;
    const c = open({ owns: () => loaded });
    const p = await init(c);
    const other = await c.initProducerId({
      transactionalId: "tx-idle",
      timeoutMs: 60_000,
      expected: null,
    });
    await c.addPartitions({ ...as(p), partitions: T01 });
    const ids = (filter: Partial<Parameters<TxnCoordinator["list"]>[0]>) =>
      c.list({
        states: new Set(),
        producerIds: new Set(),
        durationMs: -1,
        ...filter,
      }).transactions.map((t) => t.transactionalId).sort();
    assert.deepEqual(ids({}), [ID, "tx-idle"]);
    assert.deepEqual(ids({ states: new Set(["Empty"]) }), ["tx-idle"]);
    assert.deepEqual(ids({ producerIds: new Set([p.producerId]) }), [ID]);
    await timers.advance(1_000);
    // Only an open transaction has been running for any time at all.
    assert.deepEqual(ids({ durationMs: 999 }), [ID]);
    assert.deepEqual(ids({ durationMs: 1_000 }), []);
    assert.equal(
      c.describe("tx-idle").txn?.producerId,
      other.producerId,
    );
    assert.equal(
      c.describe("nobody").errorCode,
      ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
    );
    // Now owning a partition it has not read back: its ids would be missed.
    loaded = false;
    c.unload(0);
    loaded = true;
    assert.equal(
      c.list({ states: new Set(), producerIds: new Set(), durationMs: -1 })
        .errorCode,
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
  });
});

Deno.test("TxnCoordinator refuses a transaction past transactions.max_partitions or transactions.max_open with POLICY_VIOLATION", async () => {
  await withSetup(async ({ open }) => {
    const warnings: string[] = [];
    const c = open({
      limits: { maxOpen: 1, maxPartitions: 2 },
      warn: (m) => warnings.push(m),
    });
    const p = await init(c);
    const q = await c.initProducerId({
      transactionalId: "tx-2",
      timeoutMs: 60_000,
      expected: null,
    });
    const asQ = { transactionalId: "tx-2", ...q };
    assert.equal(await c.addPartitions({ ...as(p), partitions: T01 }), 0);
    // A third partition is one too many; the two already in stay.
    assert.equal(
      await c.addPartitions({
        ...as(p),
        partitions: [{ topic: "r", partitions: [0] }],
      }),
      ErrorCode.POLICY_VIOLATION,
    );
    assert.deepEqual(c.state(ID)?.partitions, T01);
    assert.match(
      warnings[0]!,
      /"tx-1" would have 3 partitions .*transactions\.max_partitions \(2\)/,
    );
    // One transaction is open: another producer may not begin a second.
    assert.equal(
      await c.addPartitions({ ...asQ, partitions: T01 }),
      ErrorCode.POLICY_VIOLATION,
    );
    assert.match(warnings[1]!, /"tx-2" cannot begin .*transactions\.max_open/);
    assert.equal(await c.endTxn({ ...as(p), result: "commit" }), 0);
    assert.equal(await c.addPartitions({ ...asQ, partitions: T01 }), 0);
  });
});

Deno.test("TxnCoordinator.expireIds forgets ids idle past their expiration with no open transaction, in the log too", async () => {
  await withSetup(async ({ timers, open }) => {
    const c = open();
    const p = await init(c);
    await c.initProducerId({
      transactionalId: "tx-open",
      timeoutMs: 900_000,
      expected: null,
    }).then((q) =>
      c.addPartitions({
        transactionalId: "tx-open",
        ...q,
        partitions: T01,
      })
    );
    await timers.advance(3_599_000);
    assert.equal(await c.expireIds(), 0);
    await timers.advance(1_000);
    // tx-1 is idle for an hour; tx-open's transaction holds its id.
    assert.equal(await c.expireIds(), 1);
    assert.equal(c.state(ID), undefined);
    assert.equal(c.state("tx-open")?.state, "Ongoing");
    assert.equal(open().state(ID), undefined, "the tombstone is durable");
    // The forgotten producer is a stranger now; a new one starts afresh.
    assert.equal(
      await c.addPartitions({ ...as(p), partitions: T01 }),
      ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    );
    assert.equal((await init(c)).errorCode, ErrorCode.NONE);
  });
});

Deno.test("a partition refuses the marker of a deposed coordinator, here and through another broker", async () => {
  await withSetup(async ({ partitions, markers, open }) => {
    const c = open();
    const p = await init(c);
    const both = [...T01, { topic: "r", partitions: [0] }];
    assert.equal(await c.addPartitions({ ...as(p), partitions: both }), 0);
    assert.equal(await c.endTxn({ ...as(p), result: "commit" }), 0);
    // The coordinator before this one (epoch 7) had the partition at 6.
    const stale = encodeMarkerBatch({
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
      result: "abort",
      coordinatorEpoch: 6,
    }, { timestampMs: 0n });
    for (const topic of ["t", "r"]) {
      assert.equal(
        await markers.write(topic, 0, stale),
        ErrorCode.TRANSACTION_COORDINATOR_FENCED,
        topic,
      );
      assert.deepEqual(markersIn(partitions.get(topic, 0)!), [
        { producerId: 1000n, epoch: 0, type: 1 },
      ]);
    }
  });
});
