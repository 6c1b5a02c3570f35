// CRC-32C against the standard check values and the incremental form.
import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";

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
