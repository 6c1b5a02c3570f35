// CRC-32C against the standard check values and the incremental form.
import assert from "node:assert/strict";
import { crc32c, crc32cCombine, noteCrc32c, takeCrc32c } from "./crc32c.ts";

const enc = new TextEncoder();

Deno.test("crc32c matches the standard check value of '123456789'", () => {
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
});

Deno.test("crc32c of 32 zero bytes is the RFC 3720 vector", () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
});

Deno.test("crc32c continues across chunks", () => {
  const data = enc.encode("the quick brown fox jumps over the lazy dog, twice");
  for (let cut = 0; cut <= data.length; cut++) {
    const head = crc32c(data.subarray(0, cut));
    assert.equal(crc32c(data.subarray(cut), head), crc32c(data));
  }
});

// A bitwise CRC-32C, one bit at a time: slow, but obviously right.
function bitwiseCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c agrees with a bitwise CRC at every length and alignment around its word path", () => {
  const data = new Uint8Array(300).map((_, i) => (i * 131 + 7) & 0xff);
  for (let start = 0; start < 4; start++) {
    for (const length of [0, 1, 15, 63, 64, 65, 79, 80, 81, 200, 296]) {
      const slice = data.subarray(start, start + length);
      assert.equal(crc32c(slice), bitwiseCrc32c(slice), `${start}+${length}`);
    }
  }
});

Deno.test("crc32cCombine equals the CRC of the concatenation", () => {
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (const length of [0, 1, 3, 21, 64, 1000, 65536 + 17]) {
    const data = new Uint8Array(length + 40).map(() => next() & 0xff);
    for (const cut of [0, 1, 20, length]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(
        crc32cCombine(crc32c(a), crc32c(b), b.length),
        crc32c(data),
        `length ${data.length} cut at ${cut}`,
      );
    }
  }
});

Deno.test("a noted CRC is taken once, then forgotten", () => {
  const bytes = enc.encode("noted");
  noteCrc32c(bytes, crc32c(bytes));
  assert.equal(takeCrc32c(bytes), crc32c(bytes));
  assert.equal(takeCrc32c(bytes), undefined);
  assert.equal(takeCrc32c(enc.encode("noted")), undefined);
});
