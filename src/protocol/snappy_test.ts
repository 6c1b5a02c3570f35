// Goal: our raw snappy codec interoperates with the reference (napi-rs
// snappy, the Rust port librdkafka-compatible clients use) both ways, and its
// decoder rejects hostile input with CompressionError only. Method: cross
// round-trips on sample inputs, hand-built malformed blocks, seeded fuzzing.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import snappy from "snappy";
import { CompressionError } from "./compression_error.ts";
import { fuzzDecoder, sampleInputs } from "./compression_testing.ts";
import { snappyCompress, snappyDecompress } from "./snappy.ts";

const asBuffer = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength);

const SAMPLES = sampleInputs();

for (const [name, data] of SAMPLES) {
  Deno.test(`snappyCompress output of ${name} is read by the reference decoder`, () => {
    const ours = snappyCompress(data);
    const back = snappy.uncompressSync(asBuffer(ours), { asBuffer: true });
    assert.ok(Buffer.compare(back as Buffer, asBuffer(data)) === 0);
  });

  Deno.test(`snappyDecompress reads the reference encoding of ${name}`, () => {
    const theirs = snappy.compressSync(asBuffer(data));
    assert.ok(
      Buffer.compare(asBuffer(snappyDecompress(theirs)), asBuffer(data)) === 0,
    );
  });
}

Deno.test("snappyCompress shrinks repetitive data and barely grows random data", () => {
  const zeros = SAMPLES.find(([n]) => n === "zeros 100000")![1];
  assert.ok(snappyCompress(zeros).length < zeros.length / 20);
  const random = SAMPLES.find(([n]) => n === "random 1 MiB")![1];
  assert.ok(snappyCompress(random).length < random.length * 1.001);
});

const bad: [string, number[]][] = [
  ["an empty input", []],
  ["a truncated preamble", [0x80]],
  ["a 6-byte preamble", [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ["a length the body cannot produce", [0xff, 0xff, 0xff, 0x7f, 0x00]],
  ["a 4 GiB length", [0xff, 0xff, 0xff, 0xff, 0x0f, ...new Array(64).fill(0)]],
  ["a literal longer than the input", [5, 4 << 2, 0x61]],
  ["a truncated long-literal length", [100, 61 << 2, 0x10]],
  ["a copy with offset 0", [8, 0, 0x61, 0x01 | (3 << 2), 0x00]],
  ["a copy before the start", [8, 0, 0x61, 0x01 | (3 << 2), 0x02]],
  ["a copy past the declared length", [3, 0, 0x61, 0x01, 0x01]],
  ["a truncated copy offset", [5, 0, 0x61, 0x02, 0x01]],
  ["a 4-byte-offset copy far back", [5, 0, 0x61, 0x03, 0xff, 0xff, 0, 0]],
  ["output shorter than declared", [3, 0, 0x61]],
];
for (const [what, bytes] of bad) {
  Deno.test(`snappyDecompress throws CompressionError on ${what}`, () => {
    assert.throws(
      () => snappyDecompress(new Uint8Array(bytes)),
      CompressionError,
    );
  });
}

Deno.test("snappyDecompress expands overlapping copies as a repeating pattern", () => {
  // "ab" then copy-2 of 60 bytes at offset 2.
  const out = snappyDecompress(
    new Uint8Array([62, 1 << 2, 0x61, 0x62, 0x02 | (59 << 2), 2, 0]),
  );
  assert.equal(new TextDecoder().decode(out), "ab".repeat(31));
});

Deno.test("snappyDecompress on seeded corruptions throws only CompressionError", () => {
  const valid = SAMPLES.slice(0, 9).map(([, d]) =>
    snappyCompress(d.subarray(0, 3000))
  );
  fuzzDecoder(snappyDecompress, { valid, rounds: 3000, seed: 11 });
});
