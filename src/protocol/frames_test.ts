// FrameDecoder: framing across chunk boundaries and the size limit.
import assert from "node:assert/strict";
import { FrameDecoder, FrameTooLargeError } from "./frames.ts";

function frame(payload: number[]): number[] {
  const n = payload.length;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...payload];
}

function feed(dec: FrameDecoder, bytes: number[]): void {
  const dst = dec.writable(bytes.length);
  dst.set(bytes);
  dec.commit(bytes.length);
}

Deno.test("FrameDecoder yields whole frames split across any chunking", () => {
  const stream = [
    ...frame([1, 2, 3]),
    ...frame([]),
    ...frame(Array.from({ length: 300 }, (_, i) => i & 255)),
  ];
  for (let chunk = 1; chunk <= stream.length; chunk += 7) {
    const dec = new FrameDecoder({ maxFrameBytes: 1000 });
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += chunk) {
      feed(dec, stream.slice(i, i + chunk));
      for (let f = dec.next(); f !== null; f = dec.next()) got.push(f);
    }
    assert.deepEqual(got.map((f) => f.length), [3, 0, 300]);
    assert.deepEqual([...got[0]!], [1, 2, 3]);
    assert.equal(got[2]![299], 299 & 255);
    assert.equal(dec.pendingBytes, 0);
  }
});

Deno.test("FrameDecoder refuses a frame over the limit before buffering it", () => {
  const dec = new FrameDecoder({ maxFrameBytes: 100 });
  feed(dec, [0x7f, 0xff, 0xff, 0xff]);
  assert.throws(() => dec.next(), FrameTooLargeError);
  const neg = new FrameDecoder({ maxFrameBytes: 100 });
  feed(neg, [0xff, 0xff, 0xff, 0xf0]);
  assert.throws(() => neg.next(), RangeError);
});

Deno.test("FrameDecoder keeps earlier frames intact while reading more", () => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 });
  feed(dec, [...frame([9, 9]), 0, 0]);
  const first = dec.next()!;
  feed(dec, [0, 2, 7, 7]);
  const second = dec.next()!;
  assert.deepEqual([...first], [9, 9]);
  assert.deepEqual([...second], [7, 7]);
});

Deno.test("FrameDecoder with chunkBytes fills a buffer before taking a new one", () => {
  const dec = new FrameDecoder({ maxFrameBytes: 1 << 20, chunkBytes: 1024 });
  const first = dec.writable(64);
  assert.equal(first.length, 1024);
  // A whole 896-byte frame and the first 4 bytes of the next.
  first.set(frame(Array.from({ length: 892 }, () => 1)));
  first.set([0, 0, 0, 8], 896);
  dec.commit(900);
  assert.equal(dec.next()?.length, 892);
  // 124 bytes are left, more than asked for: the same buffer.
  const rest = dec.writable(64);
  assert.equal(rest.buffer, first.buffer);
  assert.equal(rest.length, 124);
  rest.set([1, 2, 3, 4, 5, 6, 7, 8]);
  dec.commit(100);
  assert.deepEqual([...dec.next()!], [1, 2, 3, 4, 5, 6, 7, 8]);
  // 24 left: a new chunk of 1024, holding the 92 pending bytes.
  const next = dec.writable(64);
  assert.notEqual(next.buffer, first.buffer);
  assert.equal(dec.pendingBytes, 92);
  assert.equal(next.length, 1024 - 92);
});
