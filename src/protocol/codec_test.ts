// Goal: the primitive readers refuse to run past the input or allocate for
// absurd lengths, and varints match Kafka's encoding. Method: hand-built
// byte sequences with known meanings.
import assert from "node:assert/strict";
import { DecodeError, EncodeError, Reader, Writer } from "./codec.ts";

Deno.test("Reader refuses a 2^31-1 length without allocating", () => {
  const r = new Reader(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2]));
  assert.throws(() => r.int32Length(), (e) => {
    assert.ok(e instanceof DecodeError);
    assert.match(e.message, /length 2147483647 exceeds the 2 bytes left/);
    return true;
  });
});

Deno.test("Reader throws DecodeError reading past the end", () => {
  assert.throws(() => new Reader(new Uint8Array(7)).int64(), DecodeError);
  assert.throws(
    () => new Reader(new Uint8Array([0x80, 0x80])).uvarint(),
    DecodeError,
  );
  assert.throws(
    () => new Reader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f])).uvarint(),
    /longer than 32 bits/,
  );
});

Deno.test("Writer and Reader agree on zigzag varints and varlongs", () => {
  const ints = [0, -1, 1, 63, -64, 64, 300, -(2 ** 31), 2 ** 31 - 1];
  const longs = [0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n), 1700000000000n];
  const w = new Writer(4);
  for (const v of ints) w.varint(v);
  for (const v of longs) w.varlong(v);
  const r = new Reader(w.finish());
  assert.deepEqual(ints.map(() => r.varint()), ints);
  assert.deepEqual(longs.map(() => r.varlong()), longs);
  assert.equal(r.remaining, 0);
});

Deno.test("Writer.varint uses Kafka's zigzag bytes", () => {
  const w = new Writer(8);
  w.varint(-1);
  w.varint(150);
  assert.deepEqual([...w.finish()], [0x01, 0xac, 0x02]);
});

Deno.test("Writer strings carry UTF-8 byte lengths in both forms", () => {
  const w = new Writer(1);
  w.int16String("é€");
  w.compactString("é€");
  w.compactString("x".repeat(200));
  const r = new Reader(w.finish());
  assert.equal(r.int16Length(), 5);
  assert.equal(r.text(5), "é€");
  assert.equal(r.compactLength(), 5);
  assert.equal(r.text(5), "é€");
  assert.equal(r.compactLength(), 200);
  assert.equal(r.text(200), "x".repeat(200));
});

Deno.test("Writer refuses out-of-range integers and malformed uuids", () => {
  const w = new Writer();
  assert.throws(() => w.int16(40000), EncodeError);
  assert.throws(() => w.int32(1.5), EncodeError);
  assert.throws(() => w.int64(2n ** 63n), EncodeError);
  assert.throws(() => w.uuid("ABC"), /32 lowercase hex/);
});

Deno.test("Reader.uuid reads 16 bytes as lowercase hex", () => {
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  assert.equal(
    new Reader(bytes).uuid(),
    "00112233445566778899aabbccddeeff",
  );
});
