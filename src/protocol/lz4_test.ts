// Goal: our LZ4 frame codec interoperates with the reference (lz4-napi,
// lz4_flex underneath) both ways, honours the block-format end rules that
// strict decoders such as liblz4 enforce, decodes the frame options other
// producers use (linked blocks, content size, checksums), and rejects hostile
// input with CompressionError only. Method: cross round-trips on sample
// inputs, hand-built frames, seeded fuzzing.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import lz4 from "lz4-napi";
import { CompressionError } from "./compression_error.ts";
import { fuzzDecoder, sampleInputs } from "./compression_testing.ts";
import { lz4Compress, lz4Decompress } from "./lz4.ts";
import { xxhash32 } from "./xxhash32.ts";

const asBuffer = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const same = (a: Uint8Array, b: Uint8Array) =>
  Buffer.compare(asBuffer(a), asBuffer(b)) === 0;

const SAMPLES = sampleInputs();

for (const [name, data] of SAMPLES) {
  Deno.test(`lz4Compress output of ${name} is read by the reference decoder`, () => {
    const ours = lz4Compress(data);
    assert.ok(same(lz4.decompressFrameSync(asBuffer(ours)), data));
  });

  Deno.test(`lz4Decompress reads the reference frame of ${name} with checksums`, () => {
    const theirs = lz4.compressFrameSync(asBuffer(data), {
      contentChecksum: true,
      blockChecksums: true,
    });
    assert.ok(same(lz4Decompress(theirs), data));
  });
}

Deno.test("lz4Decompress reads the reference frame without checksums", () => {
  const data = SAMPLES.find(([n]) => n === "mixed 200000")![1];
  assert.ok(same(lz4Decompress(lz4.compressFrameSync(asBuffer(data))), data));
});

Deno.test("lz4Compress shrinks repetitive data and stores random blocks raw", () => {
  const zeros = SAMPLES.find(([n]) => n === "zeros 100000")![1];
  assert.ok(lz4Compress(zeros).length < zeros.length / 50);
  const random = SAMPLES.find(([n]) => n === "random 1 MiB")![1];
  // 7-byte header, 4-byte size per 64 KiB block, 4-byte end mark.
  assert.equal(lz4Compress(random).length, 7 + 16 * 4 + random.length + 4);
});

/** Walks one frame's blocks, as our encoder writes them. */
function blocksOf(frame: Uint8Array): { data: Uint8Array; raw: boolean }[] {
  const view = new DataView(frame.buffer, frame.byteOffset);
  const blocks = [];
  for (let ip = 7;;) {
    const word = view.getUint32(ip, true);
    if (word === 0) return blocks;
    const size = word & 0x7fffffff;
    blocks.push({
      data: frame.subarray(ip + 4, ip + 4 + size),
      raw: word >>> 31 === 1,
    });
    ip += 4 + size;
  }
}

Deno.test("lz4Compress keeps the last 5 bytes literal and the last match 12 bytes from the end", () => {
  for (const [name, data] of SAMPLES) {
    let blockStart = 0;
    for (const { data: block, raw } of blocksOf(lz4Compress(data))) {
      const blockLen = Math.min(65536, data.length - blockStart);
      blockStart += blockLen;
      if (raw) continue;
      let ip = 0;
      let op = 0;
      let lastMatchStart = -1;
      const lengthAt = (base: number) => {
        let n = base;
        if (base === 15) {
          let b;
          do n += b = block[ip++]!; while (b === 255);
        }
        return n;
      };
      for (;;) {
        const token = block[ip++]!;
        const lit = lengthAt(token >>> 4);
        ip += lit;
        op += lit;
        if (ip === block.length) {
          assert.ok(lit >= 5 || blockLen < 13, `${name}: ${lit} last literals`);
          break;
        }
        ip += 2;
        lastMatchStart = op;
        op += lengthAt(token & 15) + 4;
      }
      assert.equal(op, blockLen, name);
      assert.ok(lastMatchStart <= blockLen - 12, `${name}: late match`);
    }
  }
});

/** A frame from hand-built blocks, with a correct header checksum. */
function frame(
  descriptor: number[],
  blocks: { bytes: number[]; raw?: boolean }[],
  trailer: number[] = [],
): Uint8Array {
  const hc = (xxhash32(new Uint8Array(descriptor)) >>> 8) & 0xff;
  const out = [0x04, 0x22, 0x4d, 0x18, ...descriptor, hc];
  for (const b of blocks) {
    const n = b.bytes.length;
    out.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, b.raw ? 0x80 : 0);
    out.push(...b.bytes);
  }
  out.push(0, 0, 0, 0, ...trailer);
  return new Uint8Array(out);
}

const text = (s: string) => [...new TextEncoder().encode(s)];
const decodeText = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("lz4Decompress lets linked blocks copy from the previous block", () => {
  // Block 2: no literals, a 9-byte match 12 bytes back (into block 1), then
  // 5 literals.
  const linked = frame([0x40, 0x40], [
    { bytes: text("hello world!"), raw: true },
    { bytes: [0x05, 12, 0, 0x50, ...text("tail.")] },
  ]);
  assert.equal(decodeText(lz4Decompress(linked)), "hello world!hello wortail.");
});

Deno.test("lz4Decompress rejects a match across independent blocks", () => {
  const independent = frame([0x60, 0x40], [
    { bytes: text("hello world!"), raw: true },
    { bytes: [0x05, 12, 0, 0x50, ...text("tail.")] },
  ]);
  assert.throws(() => lz4Decompress(independent), CompressionError);
});

Deno.test("lz4Decompress skips a content size field and checks a content checksum", () => {
  const body = text("content!");
  const sum = xxhash32(new Uint8Array(body));
  const descriptor = [0x6c, 0x70, 8, 0, 0, 0, 0, 0, 0, 0];
  const trailer = [
    sum & 255,
    (sum >>> 8) & 255,
    (sum >>> 16) & 255,
    sum >>> 24,
  ];
  const good = frame(descriptor, [{ bytes: body, raw: true }], trailer);
  assert.equal(decodeText(lz4Decompress(good)), "content!");
  trailer[0]! ^= 1;
  const bad = frame(descriptor, [{ bytes: body, raw: true }], trailer);
  assert.throws(() => lz4Decompress(bad), /content checksum/);
});

Deno.test("lz4Decompress reads a frame after a skippable frame", () => {
  const skippable = [0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
  const data = frame([0x60, 0x40], [{ bytes: text("x"), raw: true }]);
  assert.equal(
    decodeText(lz4Decompress(new Uint8Array([...skippable, ...data]))),
    "x",
  );
});

const badFrames: [string, Uint8Array][] = [
  ["an empty input", new Uint8Array(0)],
  ["a wrong magic", new Uint8Array([1, 2, 3, 4, 0x60, 0x40, 0x82, 0, 0, 0, 0])],
  [
    "a header checksum mismatch",
    (() => {
      const f = frame([0x60, 0x40], []);
      f[6]! ^= 1;
      return f;
    })(),
  ],
  ["version 0", frame([0x20, 0x40], [])],
  ["a reserved BD bit", frame([0x60, 0x41], [])],
  ["block max size code 3", frame([0x60, 0x30], [])],
  ["a dictionary id", frame([0x61, 0x40, 0, 0, 0, 0], [])],
  ["a missing end mark", frame([0x60, 0x40], []).subarray(0, 7)],
  [
    "a block larger than its maximum",
    frame([0x60, 0x40], [{
      bytes: new Array(65537).fill(0),
      raw: true,
    }]),
  ],
  [
    "a block ending inside a match",
    frame([0x60, 0x40], [{
      bytes: [0x10, 0x61, 1, 0],
    }]),
  ],
  [
    "a match offset of 0",
    frame([0x60, 0x40], [{
      bytes: [0x10, 0x61, 0, 0, 0x00],
    }]),
  ],
  [
    "a block checksum mismatch",
    frame([0x70, 0x40], [{
      bytes: [...text("x"), 0, 0, 0, 0],
      raw: true,
    }]),
  ],
];
for (const [what, input] of badFrames) {
  Deno.test(`lz4Decompress throws CompressionError on ${what}`, () => {
    assert.throws(() => lz4Decompress(input), CompressionError);
  });
}

Deno.test("lz4Decompress on seeded corruptions throws only CompressionError", () => {
  const valid = SAMPLES.slice(0, 9).map(([, d]) =>
    lz4Compress(d.subarray(0, 3000))
  );
  valid.push(
    lz4.compressFrameSync(asBuffer(SAMPLES[7]![1].subarray(0, 3000)), {
      contentChecksum: true,
      blockChecksums: true,
    }),
  );
  fuzzDecoder(lz4Decompress, { valid, rounds: 3000, seed: 12 });
});
