// Goal: batches we build decode back to the same records under every codec,
// carry a valid CRC, and record sets cut mid-batch or built by kafkajs read
// correctly. Method: round-trips plus kafkajs' RecordBatch encoder.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Buffer } from "node:buffer";
import snappy from "snappy";
import { compress, CompressionError, decompress } from "./compression.ts";
import {
  Compression,
  type CompressionCode,
  InvalidBatchError,
  validatedRecordSetCrc32c,
  validateRecordSet,
} from "./record_batch.ts";
import { crc32c } from "../util/mod.ts";
import {
  buildRecordBatch,
  decodeRecordBatches,
  recompressRecordSet,
} from "./records.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

const INPUT = [
  { key: bytes("k1"), value: bytes("v1".repeat(50)), timestamp: 1000n },
  {
    value: null,
    timestamp: 1007n,
    headers: [{ key: "trace", value: bytes("abc") }],
  },
  {
    key: bytes("k3"),
    value: bytes("ü"),
    timestamp: 990n,
    headers: [{ key: "h", value: null }, { key: "é", value: bytes("") }],
  },
];

const EXPECTED = [
  {
    offset: 100n,
    timestamp: 1000n,
    key: bytes("k1"),
    value: bytes("v1".repeat(50)),
    headers: [],
  },
  {
    offset: 101n,
    timestamp: 1007n,
    key: null,
    value: null,
    headers: [{ key: "trace", value: bytes("abc") }],
  },
  {
    offset: 102n,
    timestamp: 990n,
    key: bytes("k3"),
    value: bytes("ü"),
    headers: [{ key: "h", value: null }, { key: "é", value: bytes("") }],
  },
];

const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;

for (const codec of CODECS) {
  Deno.test(`buildRecordBatch and decodeRecordBatches round-trip with ${codec}`, () => {
    const batch = buildRecordBatch(INPUT, {
      compression: Compression[codec],
      baseOffset: 100n,
    });
    const [header] = validateRecordSet(batch);
    assert.equal(header!.attributes & 7, Compression[codec]);
    assert.equal(header!.maxTimestamp, 1007n);
    assert.equal(header!.lastOffsetDelta, 2);
    assert.deepEqual(decodeRecordBatches(batch), EXPECTED);
  });
}

for (const from of CODECS) {
  for (const to of CODECS) {
    Deno.test(`recompressRecordSet rewrites ${from} batches as ${to}, keeping offsets and producer fields`, () => {
      const opts = {
        producerId: 7n,
        producerEpoch: 2,
        baseSequence: 40,
        compression: Compression[from],
      };
      const set = new Uint8Array([
        ...buildRecordBatch(INPUT, { ...opts, baseOffset: 100n }),
        ...buildRecordBatch(INPUT, { ...opts, baseOffset: 103n }),
      ]);
      const out = recompressRecordSet(set, Compression[to], 6);
      if (from === to) assert.equal(out, set);
      const headers = validateRecordSet(out);
      assert.deepEqual(
        headers.map((h) => [
          h.attributes & 7,
          h.baseOffset,
          h.lastOffsetDelta,
          h.producerId,
          h.producerEpoch,
          h.baseSequence,
          h.maxTimestamp,
        ]),
        [100n, 103n].map((base) => [
          Compression[to],
          base,
          2,
          7n,
          2,
          40,
          1007n,
        ]),
      );
      assert.deepEqual(decodeRecordBatches(out), [
        ...EXPECTED,
        ...EXPECTED.map((r) => ({ ...r, offset: r.offset + 3n })),
      ]);
    });
  }
}

Deno.test("compress honours a gzip and a zstd level", () => {
  // Words drawn by an LCG: repetitive enough to compress, irregular
  // enough that a higher level finds more.
  const words = ["raft", "log", "batch", "offset", "leader", "term", "key"];
  let seed = 1;
  const text = Array.from({ length: 20_000 }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return words[seed % words.length];
  }).join(" ");
  const data = bytes(text);
  for (const codec of [Compression.gzip, Compression.zstd]) {
    const fast = compress(codec, data, 1);
    const best = compress(codec, data, codec === Compression.gzip ? 9 : 19);
    assert.ok(
      best.length < fast.length,
      `${codec}: ${best.length} < ${fast.length}`,
    );
    assert.deepEqual(decompress(codec, best), data);
  }
});

Deno.test("decompress reads a zstd frame", () => {
  // zstd frame of "hello" (raw block), written out by hand.
  const frame = new Uint8Array([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x20,
    0x05,
    0x29,
    0x00,
    0x00,
    0x68,
    0x65,
    0x6c,
    0x6c,
    0x6f,
  ]);
  assert.equal(
    new TextDecoder().decode(decompress(Compression.zstd, frame)),
    "hello",
  );
});

Deno.test("decompress reads xerial-framed snappy as Java clients write it", () => {
  const data = bytes("xerial ".repeat(40));
  const half = data.length / 2;
  const chunks = [data.subarray(0, half), data.subarray(half)].map((c) =>
    snappy.compressSync(Buffer.from(c))
  );
  const header = [
    0x82,
    0x53,
    0x4e,
    0x41,
    0x50,
    0x50,
    0x59,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    1,
  ];
  const framed: number[] = [...header];
  for (const c of chunks) {
    framed.push(
      c.length >>> 24,
      (c.length >>> 16) & 255,
      (c.length >>> 8) & 255,
      c.length & 255,
    );
    framed.push(...c);
  }
  assert.deepEqual(
    Array.from(decompress(Compression.snappy, new Uint8Array(framed))),
    Array.from(data),
  );
});

Deno.test("decompress wraps a codec failure in CompressionError", () => {
  assert.throws(
    () => decompress(Compression.gzip, new Uint8Array([1, 2, 3])),
    CompressionError,
  );
  assert.deepEqual(
    Array.from(
      decompress(Compression.lz4, compress(Compression.lz4, bytes("abc"))),
    ),
    Array.from(bytes("abc")),
  );
});

Deno.test("decodeRecordBatches ignores a partial trailing batch", () => {
  const a = buildRecordBatch([{ value: bytes("a") }], { baseOffset: 5n });
  const b = buildRecordBatch([{ value: bytes("b") }], { baseOffset: 6n });
  const set = new Uint8Array([...a, ...b.subarray(0, b.length - 1)]);
  const got = decodeRecordBatches(set);
  assert.deepEqual(got.map((r) => r.offset), [5n]);
});

Deno.test("decodeRecordBatches rejects a batch whose CRC does not match", () => {
  const batch = buildRecordBatch([{ value: bytes("a") }]);
  batch[batch.length - 1]! ^= 1;
  assert.throws(
    () => decodeRecordBatches(batch),
    (e) => e instanceof InvalidBatchError && e.problem === "bad-crc",
  );
});

Deno.test("validateRecordSet refuses a bad CRC unless told the bytes were checked before", () => {
  const values = [bytes("a"), bytes("b")];
  const batch = buildRecordBatch(values.map((value) => ({ value })));
  batch[batch.length - 1]! ^= 1;
  assert.throws(
    () => validateRecordSet(batch),
    (e) => e instanceof InvalidBatchError && e.problem === "bad-crc",
  );
  const [header] = validateRecordSet(batch, { crcChecked: true });
  assert.equal(header?.recordsCount, 2);
  // The structure is still checked: a cut batch is refused either way.
  assert.throws(
    () => validateRecordSet(batch.subarray(0, 70), { crcChecked: true }),
    (e) => e instanceof InvalidBatchError && e.problem === "bad-length",
  );
});

Deno.test("validatedRecordSetCrc32c equals the CRC of the whole set, offsets stamped or not", () => {
  const first = buildRecordBatch([{ value: bytes("x".repeat(3000)) }]);
  const second = buildRecordBatch(INPUT, { compression: Compression.gzip });
  const set = new Uint8Array(first.length + second.length);
  set.set(first);
  set.set(second, first.length);
  validateRecordSet(set);
  assert.equal(validatedRecordSetCrc32c(set), crc32c(set));
  // Base offsets and epochs lie outside the batch CRCs: still derived right.
  new DataView(set.buffer).setBigInt64(first.length, 42n);
  set.fill(7, 12, 16);
  assert.equal(validatedRecordSetCrc32c(set), crc32c(set));
});

Deno.test("decodeRecordBatches reads a batch built by kafkajs", async () => {
  const require = createRequire(import.meta.url);
  const base = "../../node_modules/kafkajs/src/protocol/recordBatch/";
  const { RecordBatch } = require(base + "v0/index.js");
  const Record = require(base + "record/v0/index.js");
  const compressionTypes = require(
    "../../node_modules/kafkajs/src/protocol/message/compression/index.js",
  ).Types;
  for (const compression of [compressionTypes.None, compressionTypes.GZIP]) {
    const batch = await RecordBatch({
      compression,
      firstOffset: "0",
      firstTimestamp: 5000,
      maxTimestamp: 5003,
      lastOffsetDelta: 1,
      records: [
        Record({ key: "a", value: "1", offsetDelta: 0, timestampDelta: 0 }),
        Record({
          value: "2",
          offsetDelta: 1,
          timestampDelta: 3,
          headers: { x: "y" },
        }),
      ],
    });
    const got = decodeRecordBatches(new Uint8Array(batch.buffer));
    assert.deepEqual(
      got,
      [
        {
          offset: 0n,
          timestamp: 5000n,
          key: bytes("a"),
          value: bytes("1"),
          headers: [],
        },
        {
          offset: 1n,
          timestamp: 5003n,
          key: null,
          value: bytes("2"),
          headers: [{ key: "x", value: bytes("y") }],
        },
      ],
    );
  }
});

Deno.test("compress leaves data untouched for codec none", () => {
  const data = bytes("same");
  assert.equal(compress(Compression.none as CompressionCode, data), data);
});

Deno.test("buildRecordBatch sets the transactional and control bits, and decodeRecordBatches skips control batches", () => {
  const data = buildRecordBatch(INPUT, { transactional: true });
  const marker = buildRecordBatch([{ key: bytes("m"), value: bytes("v") }], {
    transactional: true,
    control: true,
  });
  const [h1, h2] = validateRecordSet(new Uint8Array([...data, ...marker]));
  assert.equal(h1!.attributes, 0x10);
  assert.equal(h2!.attributes, 0x30);
  assert.equal(
    decodeRecordBatches(new Uint8Array([...data, ...marker])).length,
    INPUT.length,
  );
});
