// The log cleaner against the real file system: real record batches
// (protocol's buildRecordBatch, every codec that can compress) go into a
// PartitionLog in a temporary directory, the log is cleaned, and a full read
// decoded with protocol's decoder (which checks every CRC) must hold the
// latest record per key at its original offset. Crashes are simulated by
// leaving the files a kill -9 would leave in the middle of a swap.
import assert from "node:assert/strict";
import {
  buildRecordBatch,
  Compression,
  type CompressionCode,
  decodeBatches,
  decodeRecordBatches,
  encodeControlKey,
  isControlBatch,
  readBatchHeader,
  validateRecordSet,
} from "../protocol/mod.ts";
import { type LogOptions, PartitionLog } from "./partition_log.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();
const BOUNDS = { keyMapBytes: 1 << 20, ioBytesPerSec: 1 << 30 };

async function withLog(
  options: Partial<LogOptions>,
  fn: (log: PartitionLog, dir: string) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "raftq-cleaner-" });
  const log = PartitionLog.open(dir, {
    compact: true,
    minCleanableDirtyRatio: 0,
    segmentBytes: 1024,
    ...options,
  });
  try {
    await fn(log, dir);
  } finally {
    log.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

function produce(
  log: PartitionLog,
  records: [string, string | null][],
  options: {
    compression?: CompressionCode;
    producerId?: bigint;
    transactional?: boolean;
  } = {},
): void {
  const batch = buildRecordBatch(
    records.map(([key, value]) => ({
      key: utf8.encode(key),
      value: value === null ? null : utf8.encode(value),
    })),
    {
      ...(options.compression === undefined
        ? {}
        : { compression: options.compression }),
      ...(options.producerId === undefined ? {} : {
        producerId: options.producerId,
        producerEpoch: 0,
        baseSequence: 0,
      }),
      ...(options.transactional ? { transactional: true } : {}),
      timestamp: 1_000n,
    },
  );
  log.append(batch, validateRecordSet(batch));
}

/** A transaction marker of `producerId` (its coordinator epoch 0). */
function mark(
  log: PartitionLog,
  producerId: bigint,
  type: "commit" | "abort",
): void {
  const batch = buildRecordBatch([{
    key: encodeControlKey(type),
    value: new Uint8Array(6),
  }], {
    producerId,
    producerEpoch: 0,
    timestamp: 1_000n,
    transactional: true,
    control: true,
  });
  log.append(batch, validateRecordSet(batch));
}

/** Every batch from the log start on, read segment by segment. */
function batchesOf(log: PartitionLog): ReturnType<typeof decodeBatches> {
  const out: ReturnType<typeof decodeBatches> = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const chunk = log.read(offset, { maxBytes: 1 << 20 });
    if (chunk.length === 0) break;
    for (const batch of decodeBatches(chunk)) {
      out.push(batch);
      offset = batch.header.baseOffset +
        BigInt(batch.header.lastOffsetDelta) + 1n;
    }
  }
  return out;
}

/** Every record from the start: [offset, key, value]. */
function readAll(log: PartitionLog): [bigint, string, string | null][] {
  return batchesOf(log)
    .filter((b) => !isControlBatch(b.header.attributes))
    .flatMap((b) => b.records)
    .map((r) => [
      r.offset,
      text.decode(r.key!),
      r.value === null ? null : text.decode(r.value),
    ]);
}

/** Ten rounds of updates to keys k0..k4, value "<round>". */
function updateRounds(log: PartitionLog, codec?: CompressionCode): void {
  for (let round = 0; round < 10; round++) {
    produce(
      log,
      [0, 1, 2, 3, 4].map((k) => [`k${k}`, `${round}`]),
      codec === undefined ? {} : { compression: codec },
    );
  }
}

for (
  const [name, codec] of [
    ["none", Compression.none],
    ["gzip", Compression.gzip],
    ["snappy", Compression.snappy],
    ["lz4", Compression.lz4],
    ["zstd", Compression.zstd],
  ] as const
) {
  Deno.test(`PartitionLog.clean keeps the latest record per key at its offset (${name} batches recompressed with ${name})`, async () => {
    await withLog({ segmentBytes: 400 }, async (log) => {
      updateRounds(log, codec);
      const before = log.sizeBytes;
      const result = await log.clean(BOUNDS);
      assert.ok(result !== null);
      assert.ok(log.sizeBytes < before);
      const records = readAll(log);
      // The closed segments hold round 9's values or an older round only
      // where the active segment (never cleaned) has the key again.
      const latest = new Map<string, [bigint, string | null]>();
      for (const [offset, key, value] of records) {
        latest.set(key, [offset, value]);
      }
      for (let k = 0; k < 5; k++) {
        assert.deepEqual(latest.get(`k${k}`), [BigInt(45 + k), "9"]);
      }
      const offsets = records.map(([o]) => o);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => Number(a - b)));
      assert.ok(records.length < 50);
      const chunk = log.read(0n, { maxBytes: 1 << 20 });
      assert.equal(
        readBatchHeader(chunk).attributes & 0x07,
        codec,
        "the rewritten batch keeps its codec",
      );
    });
  });
}

Deno.test("PartitionLog.read at an offset removed by cleaning returns the next record", async () => {
  await withLog({ segmentBytes: 400 }, async (log) => {
    updateRounds(log);
    await log.clean(BOUNDS);
    const kept = readAll(log).map(([o]) => o);
    const removed = [...Array(50).keys()].map(BigInt).find((o) =>
      !kept.includes(o)
    )!;
    const next = kept.find((o) => o > removed)!;
    const first = decodeRecordBatches(log.read(removed, { maxBytes: 1 }))
      .find((r) => r.offset >= removed)!;
    assert.equal(first.offset, next);
  });
});

Deno.test("PartitionLog.clean never touches the active segment", async () => {
  await withLog({ segmentBytes: 1 << 20 }, async (log) => {
    updateRounds(log);
    assert.equal(await log.clean(BOUNDS), null);
    assert.equal(readAll(log).length, 50);
  });
});

Deno.test("PartitionLog.clean waits for minCleanableDirtyRatio and minCompactionLagMs", async () => {
  // The records' timestamps are 1_000 (see produce).
  let nowMs = 2_000;
  await withLog({
    segmentBytes: 400,
    minCompactionLagMs: 5_000,
    clock: () => nowMs,
  }, async (log) => {
    updateRounds(log);
    assert.equal(await log.clean(BOUNDS), null, "records are too young");
    nowMs += 10_000;
    assert.ok(await log.clean(BOUNDS) !== null);
    // Everything closed is clean now: no dirty bytes, no cleaning.
    assert.equal(await log.clean(BOUNDS), null);
  });
  await withLog(
    { segmentBytes: 400, minCleanableDirtyRatio: 1 },
    async (log) => {
      updateRounds(log);
      assert.ok(await log.clean(BOUNDS) !== null, "all dirty: ratio 1 reached");
      produce(log, [["k0", "x"], ["k1", "x"], ["k2", "x"], ["k3", "x"]]);
      produce(log, [["k0", "y"], ["k1", "y"], ["k2", "y"], ["k3", "y"]]);
      assert.equal(await log.clean(BOUNDS), null, "part clean: below ratio 1");
    },
  );
});

Deno.test("PartitionLog.clean keeps a tombstone for deleteRetentionMs after the cleaning that saw it", async () => {
  let nowMs = 10_000;
  await withLog({
    segmentBytes: 300,
    deleteRetentionMs: 60_000,
    clock: () => nowMs,
  }, async (log) => {
    produce(log, [["gone", "v"], ["stays", "v"]]);
    produce(log, [["gone", null], ["stays", "w"]]);
    for (let i = 0; i < 6; i++) produce(log, [[`filler${i}`, "f"]]);
    await log.clean(BOUNDS);
    const tombstone = (r: [bigint, string, string | null]) =>
      r[1] === "gone" && r[2] === null;
    assert.ok(readAll(log).some(tombstone), "kept within the retention");
    assert.ok(!readAll(log).some((r) => r[1] === "gone" && r[2] === "v"));
    for (let i = 0; i < 6; i++) produce(log, [[`filler${i}`, "g"]]);
    nowMs += 61_000;
    await log.clean(BOUNDS);
    assert.ok(!readAll(log).some(tombstone), "removed after the retention");
    assert.ok(readAll(log).some((r) => r[1] === "stays" && r[2] === "w"));
  });
});

Deno.test("PartitionLog.clean drops tombstones past their horizon with nothing new written, also after a reopen", async () => {
  let nowMs = 10_000;
  const options = {
    compact: true,
    minCleanableDirtyRatio: 0,
    segmentBytes: 300,
    deleteRetentionMs: 60_000,
    clock: () => nowMs,
  };
  const dir = Deno.makeTempDirSync({ prefix: "raftq-cleaner-" });
  let log = PartitionLog.open(dir, options);
  try {
    produce(log, [["gone", "v"], ["stays", "v"]]);
    produce(log, [["gone", null], ["stays", "w"]]);
    for (let i = 0; i < 6; i++) produce(log, [[`filler${i}`, "f"]]);
    assert.notEqual(await log.clean(BOUNDS), null);
    assert.equal(await log.clean(BOUNDS), null, "nothing due before horizon");
    log.close();
    log = PartitionLog.open(dir, options);
    nowMs += 61_000;
    assert.notEqual(await log.clean(BOUNDS), null, "horizon passed");
    const records = readAll(log);
    assert.ok(!records.some((r) => r[1] === "gone"), "tombstone dropped");
    assert.ok(records.some((r) => r[1] === "stays" && r[2] === "w"));
    assert.equal(await log.clean(BOUNDS), null, "no tombstone left");
  } finally {
    log.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PartitionLog of a compact,delete topic cleans and still deletes its oldest segments by retention size", async () => {
  await withLog({ segmentBytes: 300, retentionBytes: 900 }, async (log) => {
    for (let round = 0; round < 12; round++) {
      produce(log, [[`k${round % 3}`, `v${round}`], [`u${round}`, "x"]]);
    }
    assert.notEqual(await log.clean(BOUNDS), null);
    // One k0 left in the closed segments, perhaps one more in the active.
    const k0 = readAll(log).filter((r) => r[1] === "k0").length;
    assert.ok(k0 <= 2, `${k0} of 4 k0 records kept`);
    log.enforceRetention();
    assert.ok(log.logStartOffset > 0n, "old segments deleted");
    assert.ok(log.sizeBytes <= 900 + 300, `${log.sizeBytes} bytes kept`);
  });
});

Deno.test("PartitionLog.clean keeps an idempotent producer's last batch, empty, with its sequence", async () => {
  await withLog({ segmentBytes: 300 }, async (log) => {
    produce(log, [["a", "1"]], { producerId: 7n });
    for (let i = 0; i < 6; i++) produce(log, [["a", `${i + 2}`]]);
    await log.clean(BOUNDS);
    const chunk = log.read(0n, { maxBytes: 1 << 20 });
    const first = readBatchHeader(chunk);
    assert.equal(first.baseOffset, 0n);
    assert.equal(first.producerId, 7n);
    assert.equal(first.baseSequence, 0);
    assert.equal(first.recordsCount, 0);
    assert.equal(
      decodeRecordBatches(chunk.subarray(0, first.sizeBytes)).length,
      0,
    );
  });
});

Deno.test("PartitionLog.open after a crash mid-swap finishes the swap, and drops an unfinished .cleaned file", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "raftq-cleaner-" });
  const options = {
    compact: true,
    minCleanableDirtyRatio: 0,
    segmentBytes: 400,
  };
  try {
    let log = PartitionLog.open(dir, options);
    updateRounds(log);
    const full = readAll(log);
    log.close();
    // A crash image before the commit point: a half-written .cleaned file.
    Deno.writeFileSync(
      `${dir}/00000000000000000000.log.cleaned`,
      new Uint8Array(10),
    );
    log = PartitionLog.open(dir, options);
    assert.deepEqual(readAll(log), full);
    assert.ok(
      ![...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".cleaned")),
    );
    // A crash image after the commit point: the swap renamed into place but
    // the segments it replaces still there.
    const aside = Deno.makeTempDirSync({ prefix: "raftq-cleaner-old-" });
    for (const e of Deno.readDirSync(dir)) {
      Deno.copyFileSync(`${dir}/${e.name}`, `${aside}/${e.name}`);
    }
    await log.clean({ ...BOUNDS });
    const cleaned = readAll(log);
    const first = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.endsWith(".log")
    ).sort()[0]!;
    const cleanedBytes = Deno.readFileSync(`${dir}/${first}`);
    const end = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.endsWith(".log")
    ).sort()[1]!.slice(0, 20);
    log.close();
    Deno.removeSync(dir, { recursive: true });
    Deno.renameSync(aside, dir);
    Deno.writeFileSync(`${dir}/${first}.${BigInt(end)}.swap`, cleanedBytes);
    log = PartitionLog.open(dir, options);
    // The swapped group holds the new set, every other group the old one.
    const baseOffset = BigInt(first.slice(0, 20));
    const endOffset = BigInt(end);
    assert.deepEqual(readAll(log), [
      ...full.filter(([o]) => o < baseOffset),
      ...cleaned.filter(([o]) => o >= baseOffset && o < endOffset),
      ...full.filter(([o]) => o >= endOffset),
    ]);
    log.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PartitionLog.clean drops aborted transactions' records, and lets neither an aborted nor an open transaction shadow a committed record", async () => {
  await withLog({ segmentBytes: 400 }, async (log) => {
    produce(log, [["a", "v1"], ["b", "v0"]]);
    produce(log, [["a", "aborted"]], { producerId: 7n, transactional: true });
    mark(log, 7n, "abort");
    produce(log, [["b", "committed"]], { producerId: 8n, transactional: true });
    // A record outside the transaction, newer than its write of "c".
    produce(log, [["c", "in-txn"]], { producerId: 8n, transactional: true });
    produce(log, [["c", "after"]]);
    mark(log, 8n, "commit");
    produce(log, [["a", "open"]], { producerId: 9n, transactional: true });
    for (let i = 0; i < 10; i++) produce(log, [[`f${i}`, "x"]]);
    assert.ok(await log.clean(BOUNDS) !== null);
    const kept = readAll(log).filter(([, key]) => !key.startsWith("f"));
    assert.deepEqual(kept, [
      // Only transaction 9's outcome can tell whether "open" replaces v1.
      [0n, "a", "v1"],
      [4n, "b", "committed"],
      [6n, "c", "after"],
      [8n, "a", "open"],
    ]);
  });
});

/** The markers left in the log: [offset, producer id]. */
function markersIn(log: PartitionLog): [bigint, bigint][] {
  return batchesOf(log)
    .filter((b) => isControlBatch(b.header.attributes))
    .map((b) => [b.header.baseOffset, b.header.producerId]);
}

Deno.test("PartitionLog.clean drops a marker once its transaction has no batch left and deleteRetentionMs has passed", async () => {
  let nowMs = 10_000;
  await withLog({
    segmentBytes: 400,
    deleteRetentionMs: 60_000,
    clock: () => nowMs,
  }, async (log) => {
    produce(log, [["a", "aborted"]], { producerId: 7n, transactional: true });
    mark(log, 7n, "abort");
    produce(log, [["b", "committed"]], { producerId: 8n, transactional: true });
    mark(log, 8n, "commit");
    produce(log, [["c", "old"]], { producerId: 9n, transactional: true });
    mark(log, 9n, "commit");
    produce(log, [["c", "new"]]);
    for (let i = 0; i < 10; i++) produce(log, [[`f${i}`, "x"]]);
    assert.ok(await log.clean(BOUNDS) !== null);
    // Transaction 7 was aborted and 9's record replaced: their markers
    // wait out the retention; 8 still has its record.
    assert.deepEqual(markersIn(log), [[1n, 7n], [3n, 8n], [5n, 9n]]);
    nowMs += 59_000;
    await log.clean(BOUNDS);
    assert.deepEqual(markersIn(log), [[1n, 7n], [3n, 8n], [5n, 9n]]);
    nowMs += 2_000;
    assert.ok(await log.clean(BOUNDS) !== null, "due with nothing new");
    assert.deepEqual(markersIn(log), [[3n, 8n]]);
    assert.deepEqual(
      readAll(log).filter(([, key]) => !key.startsWith("f")),
      [[2n, "b", "committed"], [6n, "c", "new"]],
    );
  });
});
