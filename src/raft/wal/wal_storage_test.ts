/**
 * WalStorage: what the core reads matches what was persisted, compaction
 * bounds the in-memory log, and a reopened WAL rebuilds the same storage.
 */
import assert from "node:assert/strict";
import { CompactedError, type Entry } from "../core/mod.ts";
import { Wal } from "./wal.ts";
import { WalStorage } from "./wal_storage.ts";

function entry(index: number, term: number): Entry {
  return { index, term, type: 0, data: new Uint8Array(100).fill(index) };
}

Deno.test("WalStorage.compact drops covered entries and survives a reopen", () => {
  const dir = Deno.makeTempDirSync();
  const confState = { voters: [1, 2, 3], learners: [] };
  const { wal } = Wal.open(dir);
  const s = new WalStorage(wal, 4, { confState });
  const entries = Array.from({ length: 10 }, (_, i) => entry(i + 1, 1));
  s.persist({
    hardState: { term: 1, vote: 2, commit: 10 },
    entries,
    snapshot: null,
  });
  wal.sync();
  assert.equal(s.lastIndex(), 10);
  const before = s.inMemBytes;
  s.compact(6, { confState, data: new Uint8Array([6]) });
  wal.sync();
  assert.ok(s.inMemBytes < before / 2, `${s.inMemBytes} bytes still held`);
  assert.equal(s.firstIndex(), 7);
  assert.throws(() => s.entries(5, 8, Infinity), CompactedError);
  wal.close();

  const reopened = Wal.open(dir);
  const again = new WalStorage(reopened.wal, 4, {
    confState: { voters: [], learners: [] },
    recovered: reopened.groups.get(4)!,
  });
  reopened.wal.close();
  assert.equal(again.firstIndex(), 7);
  assert.equal(again.lastIndex(), 10);
  assert.equal(again.term(6), 1);
  assert.deepEqual(again.entries(7, 11, Infinity), entries.slice(6));
  assert.deepEqual(again.initialState(), {
    hardState: { term: 1, vote: 2, commit: 10 },
    confState,
  });
  assert.deepEqual(again.snapshot().data, new Uint8Array([6]));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("WalStorage.compact retains the newest covered entries within retainBytesMax", () => {
  const dir = Deno.makeTempDirSync();
  const confState = { voters: [1, 2, 3], learners: [] };
  const { wal } = Wal.open(dir);
  const s = new WalStorage(wal, 4, { confState });
  const entries = Array.from({ length: 10 }, (_, i) => entry(i + 1, 1));
  s.persist({
    hardState: { term: 1, vote: 2, commit: 10 },
    entries,
    snapshot: null,
  });
  s.compact(6, { confState, data: new Uint8Array([6]), retainEntries: 3 });
  assert.equal(s.snapshot().meta.index, 6);
  assert.equal(s.firstIndex(), 4);
  assert.deepEqual(s.entries(4, 11, Infinity), entries.slice(3));
  assert.equal(s.inMemBytes, 7 * 116);

  // Entries 9 and 10 plus one retained entry fit in 3 entries' bytes.
  s.compact(8, {
    confState,
    data: new Uint8Array([8]),
    retainEntries: 5,
    retainBytesMax: 3 * 116,
  });
  assert.equal(s.firstIndex(), 8);
  assert.equal(s.inMemBytes, 3 * 116);
  wal.close();

  const reopened = Wal.open(dir);
  const again = new WalStorage(reopened.wal, 4, {
    confState: { voters: [], learners: [] },
    recovered: reopened.groups.get(4)!,
  });
  reopened.wal.close();
  assert.equal(again.firstIndex(), 9);
  assert.equal(again.lastIndex(), 10);
  Deno.removeSync(dir, { recursive: true });
});
