// SparseIndex: lookups both ways, and the on-disk formats round-trip or are
// refused when torn. Pure in-memory tests.
import assert from "node:assert/strict";
import {
  OFFSET_INDEX_FORMAT,
  SparseIndex,
  TIME_INDEX_FORMAT,
} from "./sparse_index.ts";
import { AssertionError } from "../util/mod.ts";

function indexOf(entries: [number, number][]): SparseIndex {
  const index = new SparseIndex();
  for (const [key, value] of entries) index.append(key, value);
  return index;
}

Deno.test("SparseIndex.floor finds the last key at or below", () => {
  const index = indexOf([[10, 0], [20, 1], [30, 2]]);
  assert.equal(index.floor(5), -1);
  assert.equal(index.floor(10), 0);
  assert.equal(index.floor(25), 1);
  assert.equal(index.floor(99), 2);
});

Deno.test("SparseIndex.ceil finds the first key at or above", () => {
  const index = indexOf([[10, 0], [20, 1], [30, 2]]);
  assert.equal(index.ceil(5), 0);
  assert.equal(index.ceil(20), 1);
  assert.equal(index.ceil(21), 2);
  assert.equal(index.ceil(31), -1);
});

Deno.test("SparseIndex.append grows past its initial capacity and refuses keys out of order", () => {
  const index = new SparseIndex();
  for (let i = 0; i < 1000; i++) index.append(i * 2, i);
  assert.equal(index.count, 1000);
  assert.equal(index.valueAt(index.floor(1001)), 500);
  assert.throws(() => index.append(5, 0), AssertionError);
});

Deno.test("SparseIndex.encode and decode round-trip both file formats", () => {
  const offsets = indexOf([[0, 0], [7, 4096], [0xffff_fffe, 0x7fff_0000]]);
  const decoded = SparseIndex.decode(
    offsets.encode(OFFSET_INDEX_FORMAT),
    OFFSET_INDEX_FORMAT,
  );
  assert.ok(decoded !== null);
  assert.equal(decoded.count, 3);
  assert.equal(decoded.keyAt(2), 0xffff_fffe);
  assert.equal(decoded.valueAt(1), 4096);

  const times = indexOf([[-1, 0], [1_700_000_000_123, 9]]);
  const bytes = times.encode(TIME_INDEX_FORMAT);
  assert.equal(bytes.length, 24);
  const decodedTimes = SparseIndex.decode(bytes, TIME_INDEX_FORMAT);
  assert.ok(decodedTimes !== null);
  assert.equal(decodedTimes.keyAt(1), 1_700_000_000_123);
  assert.equal(decodedTimes.valueAt(1), 9);
});

Deno.test("SparseIndex.decode refuses a torn or unordered file", () => {
  const bytes = indexOf([[1, 10], [2, 20]]).encode(OFFSET_INDEX_FORMAT);
  assert.equal(
    SparseIndex.decode(bytes.subarray(0, 12), OFFSET_INDEX_FORMAT),
    null,
  );
  const swapped = new Uint8Array(16);
  swapped.set(bytes.subarray(8), 0);
  swapped.set(bytes.subarray(0, 8), 8);
  assert.equal(SparseIndex.decode(swapped, OFFSET_INDEX_FORMAT), null);
});
