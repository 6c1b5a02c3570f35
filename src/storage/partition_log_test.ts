// PartitionLog against the real file system: every test works in its own
// temporary directory with batches from testing.ts. Crashes are simulated by
// copying a log's `.log` files aside before close(), which is what a kill -9
// leaves behind (no index files written at close), then damaging the copy.
import assert from "node:assert/strict";
import {
  isLogAppendTime,
  readBatchHeader,
  stampLogAppendTime,
  validateRecordSet,
} from "../protocol/record_batch.ts";
import {
  type LogOptions,
  OffsetOutOfRangeError,
  PartitionLog,
} from "./partition_log.ts";
import { makeBatch, makeRecordSet, type TestBatchOptions } from "./testing.ts";

function withDir(fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "raftq-storage-" });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Appends one record set holding a batch per entry; returns its bytes. */
function appendSet(
  log: PartitionLog,
  batches: TestBatchOptions[],
): { records: Uint8Array; baseOffset: bigint; lastOffset: bigint } {
  const { records, headers } = makeRecordSet(batches.map((b) => makeBatch(b)));
  return { records, ...log.append(records, headers) };
}

/** Base and last offsets of every batch in a fetched chunk. */
function batchOffsets(bytes: Uint8Array): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (let pos = 0; pos < bytes.length;) {
    const h = readBatchHeader(bytes, pos);
    out.push([h.baseOffset, h.baseOffset + BigInt(h.lastOffsetDelta)]);
    pos += h.sizeBytes;
  }
  return out;
}

function logFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.endsWith(".log")
  ).sort();
}

/** Copies the `.log` files: what a crash before close() leaves on disk. */
function crashImage(source: string, target: string): void {
  for (const name of logFiles(source)) {
    Deno.copyFileSync(`${source}/${name}`, `${target}/${name}`);
  }
}

function captureWarnings(fn: () => void): string[] {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

class FakeClock {
  nowMs = 1_000_000;
  readonly clock = () => this.nowMs;
}

/** Batch of the default test size: 61-byte header + 100 payload bytes. */
const BATCH_BYTES = 161;

Deno.test("PartitionLog.read returns appended batches byte for byte with offsets stamped", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    const { records } = appendSet(log, [{ records: 2, fill: 1 }, {
      records: 3,
      fill: 2,
    }]);
    const bytes = log.read(0n, { maxBytes: 1 << 20 });
    assert.deepEqual(bytes, records);
    assert.deepEqual(batchOffsets(bytes), [[0n, 1n], [2n, 4n]]);
    log.close();
  });
});

Deno.test("PartitionLog.append assigns consecutive offsets across appends and stamps the leader epoch", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    assert.deepEqual(appendSet(log, [{ records: 5 }]).lastOffset, 4n);
    const second = appendSet(log, [{ records: 1 }, { records: 3 }]);
    assert.equal(second.baseOffset, 5n);
    assert.equal(second.lastOffset, 8n);
    const { records, headers } = makeRecordSet([makeBatch()]);
    assert.deepEqual(log.append(records, headers, { leaderEpoch: 7 }), {
      baseOffset: 9n,
      lastOffset: 9n,
    });
    assert.equal(log.logEndOffset, 10n);
    const last = log.read(9n, { maxBytes: 1 });
    assert.equal(readBatchHeader(last).partitionLeaderEpoch, 7);
    log.close();
  });
});

Deno.test("PartitionLog.read from inside a batch returns that whole batch", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    appendSet(log, [{ records: 5 }, { records: 5 }]);
    assert.deepEqual(batchOffsets(log.read(7n, { maxBytes: 1 << 20 })), [[
      5n,
      9n,
    ]]);
    assert.deepEqual(batchOffsets(log.read(3n, { maxBytes: 1 << 20 })), [
      [0n, 4n],
      [5n, 9n],
    ]);
    log.close();
  });
});

Deno.test("PartitionLog.read stops at maxBytes on whole batches but returns at least one", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    appendSet(log, [{}, {}, {}]);
    assert.equal(log.read(0n, { maxBytes: 0 }).length, BATCH_BYTES);
    assert.equal(
      log.read(0n, { maxBytes: 2 * BATCH_BYTES - 1 }).length,
      BATCH_BYTES,
    );
    assert.equal(
      log.read(0n, { maxBytes: 2 * BATCH_BYTES }).length,
      2 * BATCH_BYTES,
    );
    assert.equal(log.read(1n, { maxBytes: 1 << 20 }).length, 2 * BATCH_BYTES);
    log.close();
  });
});

Deno.test("PartitionLog.read serves only batches that end below maxOffset", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    appendSet(log, [{ records: 5 }, { records: 1 }, { records: 3 }]);
    const upTo6 = log.read(0n, { maxBytes: 1 << 20, maxOffset: 6n });
    assert.deepEqual(batchOffsets(upTo6), [[0n, 4n], [5n, 5n]]);
    // The high watermark inside the first batch hides all of it.
    assert.equal(log.read(0n, { maxBytes: 1 << 20, maxOffset: 4n }).length, 0);
    assert.equal(log.read(6n, { maxBytes: 1 << 20, maxOffset: 6n }).length, 0);
    log.close();
  });
});

Deno.test("PartitionLog.read at the end is empty and outside the log throws OffsetOutOfRangeError", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    assert.equal(log.read(0n, { maxBytes: 100 }).length, 0);
    appendSet(log, [{ records: 4 }, { records: 4 }]);
    assert.equal(log.read(8n, { maxBytes: 100 }).length, 0);
    assert.throws(
      () => log.read(9n, { maxBytes: 100 }),
      (e) =>
        e instanceof OffsetOutOfRangeError && e.offset === 9n &&
        e.logEndOffset === 8n,
    );
    log.deleteRecordsBefore(4n);
    assert.throws(() => log.read(3n, { maxBytes: 100 }), OffsetOutOfRangeError);
    assert.deepEqual(batchOffsets(log.read(4n, { maxBytes: 100 })), [[4n, 7n]]);
    assert.throws(() => log.deleteRecordsBefore(9n), OffsetOutOfRangeError);
    log.close();
  });
});

Deno.test("PartitionLog.open rejects bad options naming the option", () => {
  withDir((dir) => {
    assert.throws(
      () => PartitionLog.open(dir, { segmentBytes: 0 }),
      /segmentBytes .*: got 0/,
    );
    assert.throws(
      () => PartitionLog.open(dir, { retentionMs: -2 }),
      /retentionMs .*: got -2/,
    );
  });
});

Deno.test("PartitionLog.append rolls a new segment when the active one would exceed segmentBytes", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, { segmentBytes: 3 * BATCH_BYTES });
    for (let i = 0; i < 7; i++) appendSet(log, [{ records: 2 }]);
    assert.deepEqual(logFiles(dir), [
      "00000000000000000000.log",
      "00000000000000000006.log",
      "00000000000000000012.log",
    ]);
    for (let offset = 0n; offset < 14n; offset++) {
      const [first] = batchOffsets(log.read(offset, { maxBytes: 1 }));
      assert.ok(
        first !== undefined && first[0] <= offset && offset <= first[1],
      );
    }
    // A fetch stays inside one segment.
    assert.equal(log.read(0n, { maxBytes: 1 << 20 }).length, 3 * BATCH_BYTES);
    log.close();
  });
});

Deno.test("PartitionLog.append rolls when the active segment's first batch is segmentMs old", () => {
  withDir((dir) => {
    const time = new FakeClock();
    const log = PartitionLog.open(dir, { segmentMs: 1000, clock: time.clock });
    appendSet(log, [{}]);
    time.nowMs += 999;
    appendSet(log, [{}]);
    assert.equal(logFiles(dir).length, 1);
    time.nowMs += 1;
    appendSet(log, [{}]);
    assert.deepEqual(logFiles(dir), [
      "00000000000000000000.log",
      "00000000000000000002.log",
    ]);
    log.close();
  });
});

Deno.test("PartitionLog.read finds every offset through the indexes of many segments, before and after reopen", () => {
  withDir((dir) => {
    const options = { segmentBytes: 4000, indexIntervalBytes: 300 };
    const log = PartitionLog.open(dir, options);
    let expected: [bigint, bigint][] = [];
    for (let i = 0; i < 120; i++) {
      const r = appendSet(log, [{
        records: 1 + (i % 4),
        payloadBytes: 40 + (i % 7) * 30,
      }]);
      expected.push([r.baseOffset, r.lastOffset]);
    }
    assert.ok(logFiles(dir).length > 5);
    const checkAll = (l: PartitionLog) => {
      for (const [base, last] of expected) {
        for (let offset = base; offset <= last; offset++) {
          assert.deepEqual(batchOffsets(l.read(offset, { maxBytes: 1 })), [[
            base,
            last,
          ]]);
        }
      }
    };
    checkAll(log);
    log.close();
    const reopened = PartitionLog.open(dir, options);
    checkAll(reopened);
    // Appends after a reopen extend the recovered indexes correctly.
    for (let i = 0; i < 30; i++) {
      const r = appendSet(reopened, [{ records: 3, payloadBytes: 90 }]);
      expected = [...expected, [r.baseOffset, r.lastOffset]];
    }
    checkAll(reopened);
    reopened.close();
  });
});

Deno.test("PartitionLog.offsetForTimestamp finds the first batch reaching the timestamp", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, { segmentBytes: 2 * BATCH_BYTES });
    for (const ts of [100n, 300n, 200n, 400n, 400n]) {
      appendSet(log, [{ records: 2, timestampMs: ts }]);
    }
    assert.deepEqual(log.offsetForTimestamp(0n), {
      offset: 0n,
      timestamp: 100n,
    });
    assert.deepEqual(log.offsetForTimestamp(150n), {
      offset: 2n,
      timestamp: 300n,
    });
    assert.deepEqual(log.offsetForTimestamp(300n), {
      offset: 2n,
      timestamp: 300n,
    });
    assert.deepEqual(log.offsetForTimestamp(301n), {
      offset: 6n,
      timestamp: 400n,
    });
    assert.equal(log.offsetForTimestamp(401n), null);
    assert.deepEqual(log.maxTimestamp(), { offset: 6n, timestamp: 400n });
    log.close();
    const reopened = PartitionLog.open(dir, { segmentBytes: 2 * BATCH_BYTES });
    assert.deepEqual(reopened.offsetForTimestamp(150n), {
      offset: 2n,
      timestamp: 300n,
    });
    reopened.close();
  });
});

Deno.test("PartitionLog.maxTimestamp and offsetForTimestamp are null for an empty log", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    assert.equal(log.maxTimestamp(), null);
    assert.equal(log.offsetForTimestamp(0n), null);
    log.close();
  });
});

Deno.test("PartitionLog.enforceRetention deletes the oldest segments beyond retentionBytes", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, {
      segmentBytes: 2 * BATCH_BYTES,
      retentionBytes: 5 * BATCH_BYTES,
      retentionMs: -1,
    });
    for (let i = 0; i < 9; i++) appendSet(log, [{ records: 10 }]);
    assert.equal(logFiles(dir).length, 5);
    // 9 batches, at most 5 kept: the two oldest full segments go.
    assert.deepEqual(log.enforceRetention(), { deletedSegments: 2 });
    assert.equal(log.logStartOffset, 40n);
    assert.equal(logFiles(dir)[0], "00000000000000000040.log");
    assert.throws(() => log.read(39n, { maxBytes: 1 }), OffsetOutOfRangeError);
    assert.deepEqual(log.enforceRetention(), { deletedSegments: 0 });
    log.close();
  });
});

Deno.test("PartitionLog.enforceRetention deletes segments past retentionMs and keeps offsets when all expire", () => {
  withDir((dir) => {
    const time = new FakeClock();
    const options: Partial<LogOptions> = {
      segmentBytes: 2 * BATCH_BYTES,
      retentionMs: 10_000,
      clock: time.clock,
    };
    const log = PartitionLog.open(dir, options);
    const t0 = BigInt(time.nowMs);
    appendSet(log, [{ timestampMs: t0 }]);
    appendSet(log, [{ timestampMs: t0 }]);
    appendSet(log, [{ timestampMs: t0 + 5000n }]);
    appendSet(log, [{ timestampMs: t0 + 5000n }]);
    appendSet(log, [{ timestampMs: t0 + 9000n }]);
    time.nowMs += 10_001;
    assert.deepEqual(log.enforceRetention(), { deletedSegments: 1 });
    assert.equal(log.logStartOffset, 2n);
    time.nowMs += 20_000;
    // Every segment, the active one too, has expired: it is rolled first.
    assert.deepEqual(log.enforceRetention(), { deletedSegments: 2 });
    assert.equal(log.logStartOffset, 5n);
    assert.equal(log.logEndOffset, 5n);
    assert.deepEqual(logFiles(dir), ["00000000000000000005.log"]);
    log.close();
    const reopened = PartitionLog.open(dir, options);
    assert.equal(reopened.logStartOffset, 5n);
    assert.equal(reopened.logEndOffset, 5n);
    assert.equal(appendSet(reopened, [{}]).baseOffset, 5n);
    reopened.close();
  });
});

Deno.test("PartitionLog.deleteRecordsBefore moves the start, survives reopen, and lets retention drop whole segments", () => {
  withDir((dir) => {
    const options = { segmentBytes: 2 * BATCH_BYTES, retentionMs: -1 };
    const log = PartitionLog.open(dir, options);
    for (let i = 0; i < 5; i++) appendSet(log, [{ records: 2 }]);
    log.deleteRecordsBefore(5n);
    assert.equal(log.logStartOffset, 5n);
    log.deleteRecordsBefore(3n);
    assert.equal(log.logStartOffset, 5n);
    log.close();
    const reopened = PartitionLog.open(dir, options);
    assert.equal(reopened.logStartOffset, 5n);
    assert.deepEqual(reopened.enforceRetention(), { deletedSegments: 1 });
    assert.equal(reopened.logStartOffset, 5n);
    assert.equal(logFiles(dir)[0], "00000000000000000004.log");
    reopened.close();
  });
});

Deno.test("PartitionLog.open after close keeps every batch, offset and timestamp", () => {
  withDir((dir) => {
    const options = { segmentBytes: 1000, indexIntervalBytes: 200 };
    const log = PartitionLog.open(dir, options);
    for (let i = 0; i < 20; i++) {
      appendSet(log, [{ records: 3, fill: i, timestampMs: BigInt(i * 10) }]);
    }
    const before = [];
    for (let o = 0n; o < 60n; o += 3n) {
      before.push(log.read(o, { maxBytes: 1 }));
    }
    log.close();
    const reopened = PartitionLog.open(dir, options);
    assert.equal(reopened.logEndOffset, 60n);
    assert.equal(reopened.durableEndOffset, 60n);
    for (let o = 0n, i = 0; o < 60n; o += 3n, i++) {
      assert.deepEqual(reopened.read(o, { maxBytes: 1 }), before[i]);
    }
    assert.deepEqual(reopened.maxTimestamp(), { offset: 57n, timestamp: 190n });
    reopened.close();
  });
});

Deno.test("PartitionLog.sync advances durableEndOffset to the end", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, { segmentBytes: BATCH_BYTES });
    appendSet(log, [{}]);
    appendSet(log, [{}]);
    assert.equal(log.durableEndOffset, 0n);
    log.sync();
    assert.equal(log.durableEndOffset, 2n);
    // The sealed segment's index files appear once its data is synced.
    assert.ok(Deno.statSync(`${dir}/00000000000000000000.index`).isFile);
    log.close();
  });
});

for (
  const damage of [
    {
      name: "a file cut mid-batch",
      apply: (path: string, size: number) => Deno.truncateSync(path, size - 50),
    },
    {
      name: "a flipped byte in the last batch",
      apply: (path: string, size: number) => {
        const bytes = Deno.readFileSync(path);
        bytes[size - 10]! ^= 0xff;
        Deno.writeFileSync(path, bytes);
      },
    },
  ]
) {
  for (const shutdown of ["a crash", "a clean close"]) {
    Deno.test(`PartitionLog.open after ${shutdown} truncates ${damage.name} to the last good batch`, () => {
      withDir((dir) => {
        const source = `${dir}/source`;
        const target = `${dir}/target`;
        Deno.mkdirSync(target);
        const options = { indexIntervalBytes: 200 };
        const log = PartitionLog.open(source, options);
        for (let i = 0; i < 6; i++) appendSet(log, [{ records: 2, fill: i }]);
        const kept = log.read(0n, { maxBytes: 1 << 20 }).subarray(
          0,
          5 * BATCH_BYTES,
        );
        if (shutdown === "a crash") crashImage(source, target);
        log.close();
        if (shutdown === "a clean close") {
          for (const e of Deno.readDirSync(source)) {
            Deno.copyFileSync(`${source}/${e.name}`, `${target}/${e.name}`);
          }
        }
        const path = `${target}/00000000000000000000.log`;
        damage.apply(path, Deno.statSync(path).size);
        let recovered: PartitionLog | undefined;
        const warnings = captureWarnings(() => {
          recovered = PartitionLog.open(target, options);
        });
        assert.ok(recovered !== undefined);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!, /00000000000000000000\.log at position 805/);
        assert.equal(recovered.logEndOffset, 10n);
        assert.deepEqual(recovered.read(0n, { maxBytes: 1 << 20 }), kept);
        assert.equal(appendSet(recovered, [{ records: 2 }]).baseOffset, 10n);
        // Reads stop at a segment's end, so look at each batch on its own.
        for (const [base, last] of [[8n, 9n], [10n, 11n]] as const) {
          assert.deepEqual(
            batchOffsets(recovered.read(last, { maxBytes: 1 })),
            [[base, last]],
          );
        }
        recovered.close();
      });
    });
  }
}

Deno.test("PartitionLog.open deletes the segments after a torn one", () => {
  withDir((dir) => {
    const source = `${dir}/source`;
    const target = `${dir}/target`;
    Deno.mkdirSync(target);
    const log = PartitionLog.open(source, { segmentBytes: 2 * BATCH_BYTES });
    for (let i = 0; i < 6; i++) appendSet(log, [{}]);
    crashImage(source, target);
    log.close();
    // A power loss may drop the tail of a sealed segment yet keep later ones.
    Deno.truncateSync(`${target}/00000000000000000002.log`, BATCH_BYTES + 3);
    let recovered: PartitionLog | undefined;
    const warnings = captureWarnings(() => {
      recovered = PartitionLog.open(target);
    });
    assert.ok(recovered !== undefined);
    assert.equal(warnings.length, 2);
    assert.equal(recovered.logEndOffset, 3n);
    assert.deepEqual(logFiles(target), [
      "00000000000000000000.log",
      "00000000000000000002.log",
    ]);
    recovered.close();
  });
});

Deno.test("PartitionLog.truncateTo drops offsets at and above, whole batches, across segments", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, { segmentBytes: 2 * BATCH_BYTES });
    for (let i = 0; i < 6; i++) appendSet(log, [{ records: 3 }]);
    log.sync();
    log.truncateTo(8n); // inside the batch 6..8: it goes whole
    assert.equal(log.logEndOffset, 6n);
    assert.equal(log.durableEndOffset, 6n);
    assert.deepEqual(logFiles(dir), [
      "00000000000000000000.log",
      "00000000000000000006.log",
    ]);
    assert.equal(appendSet(log, [{ records: 1 }]).baseOffset, 6n);
    log.truncateTo(100n);
    assert.equal(log.logEndOffset, 7n);
    log.close();
    const reopened = PartitionLog.open(dir, { segmentBytes: 2 * BATCH_BYTES });
    assert.equal(reopened.logEndOffset, 7n);
    assert.deepEqual(batchOffsets(reopened.read(6n, { maxBytes: 1 << 20 })), [[
      6n,
      6n,
    ]]);
    reopened.close();
  });
});

Deno.test("PartitionLog.truncateTo below the first segment empties the log and restarts it there", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir, {
      segmentBytes: BATCH_BYTES,
      retentionMs: -1,
    });
    for (let i = 0; i < 3; i++) appendSet(log, [{ records: 2 }]);
    log.deleteRecordsBefore(4n);
    log.enforceRetention();
    assert.equal(log.logStartOffset, 4n);
    log.truncateTo(1n);
    assert.equal(log.logStartOffset, 1n);
    assert.equal(log.logEndOffset, 1n);
    assert.equal(appendSet(log, [{}]).baseOffset, 1n);
    log.close();
    const reopened = PartitionLog.open(dir);
    assert.equal(reopened.logStartOffset, 1n);
    assert.equal(reopened.logEndOffset, 2n);
    reopened.close();
  });
});

Deno.test("PartitionLog.destroy removes the partition directory", () => {
  withDir((dir) => {
    const path = `${dir}/topic-0`;
    const log = PartitionLog.open(path);
    appendSet(log, [{}]);
    log.close();
    PartitionLog.destroy(path);
    assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
    PartitionLog.destroy(path);
  });
});

Deno.test("PartitionLog.truncateTo below logStartOffset keeps the lowered start across appends and reopen", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    for (let i = 0; i < 4; i++) appendSet(log, [{ records: 2 }]);
    log.deleteRecordsBefore(6n);
    log.truncateTo(4n);
    assert.equal(log.logStartOffset, 4n);
    appendSet(log, [{ records: 5 }]);
    log.close();
    const reopened = PartitionLog.open(dir);
    assert.equal(reopened.logStartOffset, 4n);
    assert.equal(reopened.logEndOffset, 9n);
    reopened.close();
  });
});

Deno.test("PartitionLog.open rebuilds an index file whose entries do not match the log", () => {
  withDir((dir) => {
    const options = { segmentBytes: 10 * BATCH_BYTES, indexIntervalBytes: 200 };
    const log = PartitionLog.open(dir, options);
    for (let i = 0; i < 15; i++) appendSet(log, [{ records: 2, fill: i }]);
    const before = log.read(0n, { maxBytes: 1 << 20 });
    log.close();
    // Sorted and whole, so it parses, but it points between batches.
    const bogus = new Uint8Array(16);
    const view = new DataView(bogus.buffer);
    view.setUint32(0, 3);
    view.setUint32(4, 100);
    view.setUint32(8, 9);
    view.setUint32(12, 1000);
    Deno.writeFileSync(`${dir}/00000000000000000000.index`, bogus);
    const warnings = captureWarnings(() => {
      const reopened = PartitionLog.open(dir, options);
      assert.deepEqual(reopened.read(0n, { maxBytes: 1 << 20 }), before);
      for (let offset = 0n; offset < 30n; offset++) {
        const [first] = batchOffsets(reopened.read(offset, { maxBytes: 1 }));
        assert.ok(
          first !== undefined && first[0] <= offset && offset <= first[1],
        );
      }
      reopened.close();
    });
    assert.deepEqual(warnings, []);
  });
});

Deno.test("PartitionLog.open after a crash checks the batches appended since the index files of the last close", () => {
  withDir((dir) => {
    const source = `${dir}/source`;
    const target = `${dir}/target`;
    Deno.mkdirSync(target);
    // A clock near the batches' timestamps, so the reopen does not roll.
    const options = { indexIntervalBytes: 200, clock: () => 2_000 };
    const first = PartitionLog.open(source, options);
    for (let i = 0; i < 4; i++) appendSet(first, [{ records: 2 }]);
    first.close();
    const second = PartitionLog.open(source, options);
    for (let i = 0; i < 4; i++) appendSet(second, [{ records: 2, fill: i }]);
    // The crash image keeps the index files of the first close.
    for (const e of Deno.readDirSync(source)) {
      Deno.copyFileSync(`${source}/${e.name}`, `${target}/${e.name}`);
    }
    second.close();
    const path = `${target}/00000000000000000000.log`;
    Deno.truncateSync(path, Deno.statSync(path).size - 1);
    let recovered: PartitionLog | undefined;
    const warnings = captureWarnings(() => {
      recovered = PartitionLog.open(target, options);
    });
    assert.ok(recovered !== undefined);
    assert.equal(warnings.length, 1);
    assert.equal(recovered.logEndOffset, 14n);
    for (let offset = 0n; offset < 14n; offset++) {
      const [batch] = batchOffsets(recovered.read(offset, { maxBytes: 1 }));
      assert.ok(
        batch !== undefined && batch[0] <= offset && offset <= batch[1],
      );
    }
    recovered.close();
  });
});

Deno.test("stampLogAppendTime rewrites maxTimestamp and the type bit under a valid CRC, and the log indexes that time", () => {
  withDir((dir) => {
    const log = PartitionLog.open(dir);
    const { records } = makeRecordSet([
      makeBatch({ timestampMs: 5n }),
      makeBatch({ timestampMs: 6n, records: 3 }),
    ]);
    stampLogAppendTime(records, 9_000n);
    log.append(records, validateRecordSet(records));
    const bytes = log.read(0n, { maxBytes: 1 << 20 });
    const stored = validateRecordSet(bytes);
    assert.deepEqual(stored.map((h) => h.maxTimestamp), [9_000n, 9_000n]);
    assert.ok(stored.every((h) => isLogAppendTime(h.attributes)));
    assert.deepEqual(stored.map((h) => h.baseTimestamp), [5n, 6n]);
    assert.deepEqual(log.maxTimestamp(), { offset: 0n, timestamp: 9_000n });
    assert.deepEqual(log.offsetForTimestamp(7n), {
      offset: 0n,
      timestamp: 9_000n,
    });
    log.close();
  });
});

async function withDirAsync(fn: (dir: string) => Promise<void>) {
  const dir = Deno.makeTempDirSync({ prefix: "raftq-storage-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("PartitionLog.syncAsync makes durable what was appended before the call, not appends made while it runs", async () => {
  await withDirAsync(async (dir) => {
    const log = PartitionLog.open(dir, { segmentBytes: BATCH_BYTES });
    appendSet(log, [{}]);
    appendSet(log, [{}]);
    const syncing = log.syncAsync();
    appendSet(log, [{}]);
    await syncing;
    assert.equal(log.durableEndOffset, 2n);
    // The first segment was sealed and synced, so its index files exist.
    assert.ok(Deno.statSync(`${dir}/00000000000000000000.index`).isFile);
    await log.syncAsync();
    assert.equal(log.durableEndOffset, 3n);
    log.close();
  });
});

Deno.test("PartitionLog.syncAsync leaves durableEndOffset below offsets a truncation rewrote while it ran", async () => {
  await withDirAsync(async (dir) => {
    const log = PartitionLog.open(dir);
    appendSet(log, [{}, {}, {}]);
    const syncing = log.syncAsync();
    log.truncateTo(1n);
    appendSet(log, [{ fill: 7 }]);
    await syncing;
    // Offset 1 now holds a batch written after the sync began.
    assert.equal(log.durableEndOffset, 1n);
    log.sync();
    assert.equal(log.durableEndOffset, 2n);
    log.close();
  });
});

Deno.test("PartitionLog.restartAt drops every segment, counts sizeBytes from zero, and reopens at the new start", () => {
  withDir((dir) => {
    const options = { segmentBytes: 2 * BATCH_BYTES };
    const log = PartitionLog.open(dir, options);
    for (let i = 0; i < 3; i++) appendSet(log, [{ records: 2 }]);
    assert.equal(log.sizeBytes, 3 * BATCH_BYTES);
    assert.throws(() => log.restartAt(6n), /restartAt only moves past/);
    log.restartAt(10n);
    assert.equal(log.sizeBytes, 0);
    assert.deepEqual(logFiles(dir), ["00000000000000000010.log"]);
    assert.deepEqual(appendSet(log, [{ records: 1 }]).baseOffset, 10n);
    assert.equal(log.sizeBytes, BATCH_BYTES);
    log.close();
    const reopened = PartitionLog.open(dir, options);
    assert.equal(reopened.logStartOffset, 10n);
    assert.equal(reopened.logEndOffset, 11n);
    reopened.close();
  });
});
