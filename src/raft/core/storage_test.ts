/** MemoryStorage: reads, conflict-truncating appends, snapshots and compaction. */
import assert from "node:assert/strict";
import {
  CompactedError,
  type Entry,
  EntryType,
  MemoryStorage,
  SnapshotOutOfDateError,
  UnavailableError,
} from "./mod.ts";

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(10) };
}

const CONF = { voters: [1, 2, 3], learners: [] };

Deno.test("MemoryStorage.append replaces conflicting entries and keeps earlier ones", () => {
  const s = new MemoryStorage(CONF);
  s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  s.append([entry(2, 2)]);
  assert.equal(s.lastIndex(), 2);
  assert.equal(s.term(1), 1);
  assert.equal(s.term(2), 2);
});

Deno.test("MemoryStorage.entries bounds by maxBytes but returns at least one", () => {
  const s = new MemoryStorage(CONF);
  s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  assert.equal(s.entries(1, 4, 0).length, 1);
  assert.equal(s.entries(1, 4, 52).length, 2);
  assert.equal(s.entries(1, 4, 1000).length, 3);
  assert.throws(() => s.entries(1, 5, 1000), UnavailableError);
});

Deno.test("MemoryStorage.compact makes earlier indices throw CompactedError", () => {
  const s = new MemoryStorage(CONF);
  s.append([entry(1, 1), entry(2, 2), entry(3, 2)]);
  s.createSnapshot(2, { confState: CONF, data: new Uint8Array([7]) });
  s.compact(2);
  assert.equal(s.firstIndex(), 3);
  assert.equal(s.term(2), 2, "the snapshot's term stays readable");
  assert.throws(() => s.term(1), CompactedError);
  assert.throws(() => s.entries(2, 3, 100), CompactedError);
  assert.deepEqual(s.snapshot().meta, { index: 2, term: 2, confState: CONF });
  assert.throws(() => s.compact(2), CompactedError);
});

Deno.test("MemoryStorage.applySnapshot replaces the log and refuses an older one", () => {
  const s = new MemoryStorage(CONF);
  s.append([entry(1, 1)]);
  const snap = {
    meta: { index: 5, term: 3, confState: CONF },
    data: new Uint8Array(),
  };
  s.applySnapshot(snap);
  assert.equal(s.firstIndex(), 6);
  assert.equal(s.lastIndex(), 5);
  assert.equal(s.term(5), 3);
  assert.throws(() => s.applySnapshot(snap), SnapshotOutOfDateError);
});

Deno.test("MemoryStorage.initialState returns the bootstrap membership and hard state", () => {
  const s = new MemoryStorage(CONF);
  s.setHardState({ term: 4, vote: 2, commit: 0 });
  assert.deepEqual(s.initialState(), {
    hardState: { term: 4, vote: 2, commit: 0 },
    confState: CONF,
  });
});
