/**
 * Wal: what open() rebuilds after writes, truncations, crashes and
 * compactions. Method: write through the real Wal into a temp dir, damage
 * the files with plain file calls where a crash is simulated, reopen.
 */
import assert from "node:assert/strict";
import type { Entry, Snapshot } from "../core/mod.ts";
import { crc32c, noteCrc32c } from "../../util/mod.ts";
import { ByteWriter, writeEntries, writeHardState } from "./binary.ts";
import { Wal, WalCorruptionError } from "./wal.ts";

function entry(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: 0, data: new TextEncoder().encode(text) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function snapshot(index: number, term: number): Snapshot {
  return {
    meta: { index, term, confState: { voters: [1, 2, 3], learners: [4] } },
    data: new TextEncoder().encode(`snap@${index}`),
  };
}

function indices(es: Entry[]): string {
  return es.map((e) => `${e.index}/${e.term}`).join(",");
}

Deno.test("Wal.open replays hard state and entries of each group after sync", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: { term: 2, vote: 3, commit: 1 },
    entries: entries(1, 3, 2),
    snapshot: null,
  });
  wal.appendReady(7, {
    hardState: { term: 5, vote: 0, commit: 0 },
    entries: entries(1, 1, 5),
    snapshot: null,
  });
  wal.sync();
  wal.appendReady(1, {
    hardState: { term: 2, vote: 3, commit: 3 },
    entries: [],
    snapshot: null,
  });
  wal.close();

  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.deepEqual(groups.get(1)?.hardState, { term: 2, vote: 3, commit: 3 });
  assert.equal(indices(groups.get(1)!.entries), "1/2,2/2,3/2");
  assert.equal(
    new TextDecoder().decode(groups.get(1)!.entries[2]!.data),
    "e3t2",
  );
  assert.deepEqual(groups.get(7)?.hardState, { term: 5, vote: 0, commit: 0 });
  assert.equal(indices(groups.get(7)!.entries), "1/5");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open lets a later append truncate the earlier suffix it conflicts with", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: null,
    entries: entries(1, 6, 1),
    snapshot: null,
  });
  wal.sync();
  // A new leader of term 2 overwrites from index 4 with a shorter log: 5 and 6 must vanish.
  wal.appendReady(1, {
    hardState: null,
    entries: [entry(4, 2)],
    snapshot: null,
  });
  wal.close();
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.equal(indices(groups.get(1)!.entries), "1/1,2/1,3/1,4/2");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open truncates a torn tail and keeps appending after it", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: null,
    entries: entries(1, 2, 1),
    snapshot: null,
  });
  wal.sync();
  const [path] = wal.segmentPaths();
  const goodBytes = Deno.statSync(path!).size;
  wal.appendReady(1, {
    hardState: null,
    entries: entries(3, 4, 1),
    snapshot: null,
  });
  wal.close();
  // A crash that wrote only part of the last record.
  Deno.truncateSync(path!, Deno.statSync(path!).size - 3);

  const first = Wal.open(dir);
  assert.equal(indices(first.groups.get(1)!.entries), "1/1,2/1");
  assert.equal(Deno.statSync(path!).size, goodBytes);
  first.wal.appendReady(1, {
    hardState: null,
    entries: [entry(3, 2)],
    snapshot: null,
  });
  first.wal.close();
  const second = Wal.open(dir);
  second.wal.close();
  assert.equal(indices(second.groups.get(1)!.entries), "1/1,2/1,3/2");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open drops a last record whose CRC does not match", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: { term: 1, vote: 1, commit: 0 },
    entries: [],
    snapshot: null,
  });
  wal.sync();
  wal.appendReady(1, {
    hardState: { term: 9, vote: 2, commit: 0 },
    entries: [],
    snapshot: null,
  });
  wal.close();
  const path = wal.segmentPaths()[0]!;
  const bytes = Deno.readFileSync(path);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  Deno.writeFileSync(path, bytes);
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.deepEqual(groups.get(1)?.hardState, { term: 1, vote: 1, commit: 0 });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open refuses a bad CRC in a segment that is not the last", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  const big = new Uint8Array(5000);
  wal.appendReady(1, {
    hardState: null,
    entries: [{ index: 1, term: 1, type: 0, data: big }],
    snapshot: null,
  });
  wal.sync(); // rolls: the first segment is full
  wal.appendReady(1, {
    hardState: null,
    entries: entries(2, 2, 1),
    snapshot: null,
  });
  wal.close();
  const paths = wal.segmentPaths();
  assert.equal(paths.length, 2);
  const bytes = Deno.readFileSync(paths[0]!);
  bytes[100] = bytes[100]! ^ 0xff;
  Deno.writeFileSync(paths[0]!, bytes);
  assert.throws(() => Wal.open(dir), WalCorruptionError);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal deletes a segment once every group compacted past its entries", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  const payload = new Uint8Array(3000);
  const big = (index: number): Entry => ({
    index,
    term: 1,
    type: 0,
    data: payload,
  });
  wal.appendReady(1, {
    hardState: { term: 1, vote: 1, commit: 2 },
    entries: [big(1), big(2)],
    snapshot: null,
  });
  wal.appendReady(2, {
    hardState: { term: 1, vote: 1, commit: 1 },
    entries: [big(1)],
    snapshot: null,
  });
  wal.sync();
  assert.equal(wal.segmentPaths().length, 2);
  const firstSegment = wal.segmentPaths()[0]!;

  // Group 1 compacted, group 2 not yet: the segment must stay.
  wal.compact(1, snapshot(2, 1));
  wal.appendReady(1, {
    hardState: null,
    entries: [big(3), big(4)],
    snapshot: null,
  });
  wal.sync();
  assert.ok(wal.segmentPaths().includes(firstSegment));

  wal.compact(2, snapshot(1, 1));
  wal.appendReady(2, {
    hardState: null,
    entries: [big(2), big(3)],
    snapshot: null,
  });
  wal.sync();
  assert.ok(!wal.segmentPaths().includes(firstSegment));
  assert.throws(() => Deno.statSync(firstSegment), Deno.errors.NotFound);
  wal.close();

  const { wal: again, groups } = Wal.open(dir);
  again.close();
  const g1 = groups.get(1)!;
  assert.equal(g1.snapshot?.meta.index, 2);
  assert.deepEqual(g1.snapshot?.meta.confState, {
    voters: [1, 2, 3],
    learners: [4],
  });
  assert.equal(new TextDecoder().decode(g1.snapshot!.data), "snap@2");
  assert.equal(indices(g1.entries), "3/1,4/1");
  assert.deepEqual(g1.hardState, { term: 1, vote: 1, commit: 2 });
  assert.equal(indices(groups.get(2)!.entries), "2/1,3/1");
  Deno.removeSync(dir, { recursive: true });
});

/**
 * Writes entry `index` of 7000 bytes (past 4 KiB segments: each sync
 * rolls) with one sync, then compacts all before it.
 */
function writeCompacting(wal: Wal, index: number): void {
  wal.appendReady(1, {
    hardState: { term: 1, vote: 1, commit: index },
    entries: [{ index, term: 1, type: 0, data: new Uint8Array(7000) }],
    snapshot: null,
  });
  wal.sync();
  wal.compact(1, snapshot(index - 1, 1));
}

function spares(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.endsWith(".spare")
  );
}

Deno.test("Wal reuses a deleted segment's file for a later segment, and replay ignores the old records beyond the new ones", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  let index = 1;
  while (spares(dir).length === 0) {
    assert.ok(index < 20, "no segment file was kept for reuse");
    writeCompacting(wal, index++);
  }
  const spare = `${dir}/${spares(dir)[0]}`;
  const spareIno = Deno.statSync(spare).ino;
  const active = wal.segmentPaths().at(-1);
  while (wal.segmentPaths().at(-1) === active) {
    assert.ok(index < 40, "the WAL did not roll");
    writeCompacting(wal, index++);
  }
  const reused = wal.segmentPaths().at(-1)!;
  assert.equal(Deno.statSync(reused).ino, spareIno);
  assert.throws(() => Deno.statSync(spare), Deno.errors.NotFound);
  // Two smaller entries fill it to less than it held before, and close it;
  // the next segment reuses a file too, which then holds only a checkpoint
  // ahead of old records.
  const first = index - 1;
  while (wal.segmentPaths().at(-1) === reused) {
    assert.ok(index < 60, "the WAL did not roll");
    wal.appendReady(1, {
      hardState: null,
      entries: [{ index, term: 1, type: 0, data: new Uint8Array(3000) }],
      snapshot: null,
    });
    wal.sync();
    index++;
  }
  assert.ok(wal.segmentPaths().includes(reused));
  wal.close();
  const { wal: again, groups } = Wal.open(dir, { segmentBytes: 4096 });
  again.close();
  const g = groups.get(1)!;
  assert.equal(g.snapshot?.meta.index, first - 1);
  assert.equal(g.entries[0]?.index, first);
  assert.equal(g.entries.at(-1)?.index, index - 1);
  assert.equal(g.hardState.commit, first);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open takes a reused segment file whose new records never reached the disk for an empty last segment", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  for (let index = 1; index <= 3; index++) writeCompacting(wal, index);
  wal.close();
  const paths = wal.segmentPaths();
  const before = Wal.open(dir);
  before.wal.close();
  // A crash right after a spare took the next segment's name: it holds
  // only records of the segment it was.
  const seq = paths.length + 10;
  const next = `${dir}/wal-${String(seq).padStart(16, "0")}.log`;
  Deno.writeFileSync(next, Deno.readFileSync(paths[0]!));
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.equal(Deno.statSync(next).size, 0);
  assert.deepEqual(groups, before.groups);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open replays a segment whose CRCs do not cover its sequence number, and writes on in a new segment", () => {
  const dir = Deno.makeTempDirSync();
  // The record layout before the sequence number was in the CRC.
  const w = new ByteWriter();
  const record = (kind: number, payload: (w: ByteWriter) => void) => {
    const start = w.length;
    w.u32(0);
    w.u32(0);
    w.u8(kind);
    w.u32(1);
    payload(w);
    const body = w.view().subarray(start + 8);
    w.u32At(start, body.length);
    w.u32At(start + 4, crc32c(body));
  };
  record(1, (w) => writeEntries(w, entries(1, 2, 1)));
  record(2, (w) => writeHardState(w, { term: 1, vote: 1, commit: 2 }));
  Deno.writeFileSync(`${dir}/wal-0000000000000001.log`, w.view());

  const first = Wal.open(dir);
  assert.equal(indices(first.groups.get(1)!.entries), "1/1,2/1");
  assert.equal(first.wal.segmentPaths().length, 2);
  first.wal.appendReady(1, {
    hardState: { term: 1, vote: 1, commit: 3 },
    entries: entries(3, 3, 1),
    snapshot: null,
  });
  first.wal.close();
  const second = Wal.open(dir);
  second.wal.close();
  assert.equal(indices(second.groups.get(1)!.entries), "1/1,2/1,3/1");
  assert.equal(second.groups.get(1)!.hardState.commit, 3);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.open replaces a group's log by a snapshot received from the leader", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(3, {
    hardState: null,
    entries: entries(1, 5, 1),
    snapshot: null,
  });
  wal.appendReady(3, {
    hardState: { term: 4, vote: 0, commit: 9 },
    entries: [],
    snapshot: snapshot(9, 3),
  });
  wal.appendReady(3, {
    hardState: null,
    entries: entries(10, 10, 4),
    snapshot: null,
  });
  wal.close();
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.equal(groups.get(3)!.snapshot?.meta.index, 9);
  assert.equal(indices(groups.get(3)!.entries), "10/4");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal.removeGroup keeps a removed group out of replay", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: null,
    entries: entries(1, 2, 1),
    snapshot: null,
  });
  wal.appendReady(2, {
    hardState: null,
    entries: entries(1, 1, 1),
    snapshot: null,
  });
  wal.removeGroup(1);
  wal.close();
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.deepEqual([...groups.keys()], [2]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Wal uses an entry's noted CRC for its record instead of reading the data", () => {
  const replayed = (note: (data: Uint8Array) => number) => {
    const dir = Deno.makeTempDirSync();
    const { wal } = Wal.open(dir);
    const es = entries(1, 3, 1);
    for (const e of es.slice(1)) noteCrc32c(e.data, note(e.data));
    wal.appendReady(1, { hardState: null, entries: es, snapshot: null });
    wal.close();
    const { wal: again, groups } = Wal.open(dir);
    again.close();
    Deno.removeSync(dir, { recursive: true });
    return indices(groups.get(1)?.entries ?? []);
  };
  assert.equal(replayed(crc32c), "1/1,2/1,3/1");
  // A wrong note makes the record fail its CRC: so the note was what counted.
  assert.equal(replayed((data) => crc32c(data) ^ 1), "");
});

Deno.test("Wal.syncRequired skips the fdatasync for a commit-only hard state and keeps it buffered for the next", () => {
  const dir = Deno.makeTempDirSync();
  const { wal } = Wal.open(dir);
  wal.appendReady(1, {
    hardState: { term: 2, vote: 1, commit: 0 },
    entries: entries(1, 2, 2),
    snapshot: null,
  });
  assert.equal(wal.syncRequired(), true);
  wal.appendReady(1, {
    hardState: { term: 2, vote: 1, commit: 2 },
    entries: [],
    snapshot: null,
  });
  assert.equal(wal.syncRequired(), false);
  // Not even written: a crash here replays the older commit.
  const crashed = Wal.open(dir);
  assert.deepEqual(crashed.groups.get(1)?.hardState, {
    term: 2,
    vote: 1,
    commit: 0,
  });
  crashed.wal.close();

  wal.appendReady(1, {
    hardState: { term: 3, vote: 1, commit: 2 },
    entries: [],
    snapshot: null,
  });
  assert.equal(wal.syncRequired(), true, "a new term must be durable");
  wal.close();
  const { wal: again, groups } = Wal.open(dir);
  again.close();
  assert.deepEqual(groups.get(1)?.hardState, { term: 3, vote: 1, commit: 2 });
  assert.equal(indices(groups.get(1)!.entries), "1/2,2/2");
});
