/**
 * Goal: ProduceBatcher proposes at once when its group is idle, merges what
 * arrives while an entry is in flight within its count, byte and time
 * bounds, keeps arrival order, and hands each caller its own outcome or
 * the entry's failure. Method: a fake `propose` that records each entry and
 * lets the test settle it.
 */
import assert from "node:assert/strict";
import { ProduceBatcher } from "./produce_batcher.ts";

interface Proposed {
  groupId: number;
  sets: string[];
  resolve(outcomes: readonly string[]): void;
  reject(err: Error): void;
}

function setup(
  bounds: Partial<
    { maxBatchSize: number; maxBatchBytes: number; batchTimeoutMs: number }
  > = {},
) {
  const proposed: Proposed[] = [];
  const batcher = new ProduceBatcher<string>({
    maxBatchSize: bounds.maxBatchSize ?? 100,
    maxBatchBytes: bounds.maxBatchBytes ?? 1 << 20,
    batchTimeoutMs: bounds.batchTimeoutMs ?? 60_000,
    propose: (groupId, sets) =>
      new Promise((resolve, reject) => {
        proposed.push({
          groupId,
          sets: sets.map((s) => new TextDecoder().decode(s)),
          resolve,
          reject,
        });
      }),
  });
  const produce = (groupId: number, value: string) =>
    batcher.produce(groupId, new TextEncoder().encode(value));
  /** Settles entry `i` with "<set>@<i>" per set. */
  const commit = (i: number) =>
    proposed[i]!.resolve(proposed[i]!.sets.map((s) => `${s}@${i}`));
  return { batcher, proposed, produce, commit };
}

/** Lets settled entries' callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("ProduceBatcher.produce proposes at once when the group is idle", () => {
  const { proposed, produce, batcher } = setup();
  void produce(1, "a");
  void produce(2, "b");
  assert.deepEqual(proposed.map((p) => [p.groupId, p.sets]), [
    [1, ["a"]],
    [2, ["b"]],
  ]);
  batcher.close();
});

Deno.test("ProduceBatcher.produce merges sets behind the in-flight entry, in order", async () => {
  const { proposed, produce, commit } = setup();
  const outcomes = ["a", "b", "c", "d"].map((v) => produce(1, v));
  assert.deepEqual(proposed.map((p) => p.sets), [["a"]]);
  commit(0);
  await settle();
  assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b", "c", "d"]]);
  commit(1);
  assert.deepEqual(await Promise.all(outcomes), ["a@0", "b@1", "c@1", "d@1"]);
});

Deno.test("ProduceBatcher.produce sends at maxBatchSize sets", async () => {
  const { proposed, produce, commit } = setup({ maxBatchSize: 2 });
  const outcomes = ["a", "b", "c", "d"].map((v) => produce(1, v));
  // A full entry leaves without waiting for the one in flight.
  assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b", "c"]]);
  commit(0);
  await settle();
  assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b", "c"], ["d"]]);
  commit(1);
  commit(2);
  assert.deepEqual(await Promise.all(outcomes), ["a@0", "b@1", "c@1", "d@2"]);
});

Deno.test("ProduceBatcher.produce sends at maxBatchBytes, a larger set alone", async () => {
  const { proposed, produce, commit, batcher } = setup({ maxBatchBytes: 4 });
  for (const v of ["a", "bb", "cc", "dddddd", "e"]) void produce(1, v);
  // "cc" would overflow ["bb"] (4 bytes is the bound, not past it: sent
  // when reached); "dddddd" exceeds the bound on its own.
  assert.deepEqual(proposed.map((p) => p.sets), [
    ["a"],
    ["bb", "cc"],
    ["dddddd"],
  ]);
  commit(0);
  await settle();
  assert.deepEqual(proposed.at(-1)?.sets, ["e"]);
  batcher.close();
});

Deno.test("ProduceBatcher.produce stops waiting after batchTimeoutMs", async () => {
  const { proposed, produce, batcher } = setup({ batchTimeoutMs: 5 });
  void produce(1, "a");
  void produce(1, "b");
  void produce(1, "c");
  assert.equal(proposed.length, 1);
  await new Promise((r) => setTimeout(r, 30));
  // The first entry never settled; the waiting ones went out anyway.
  assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b", "c"]]);
  batcher.close();
});

Deno.test("ProduceBatcher.produce never merges with batchTimeoutMs 0 or maxBatchSize 1", () => {
  for (const bounds of [{ batchTimeoutMs: 0 }, { maxBatchSize: 1 }]) {
    const { proposed, produce } = setup(bounds);
    for (const v of ["a", "b", "c"]) void produce(1, v);
    assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b"], ["c"]]);
  }
});

Deno.test("ProduceBatcher.produce rejects every caller of a failed or unmatched entry", async () => {
  const { proposed, produce, commit } = setup();
  const first = produce(1, "a");
  const merged = [produce(1, "b"), produce(1, "c")];
  commit(0);
  await settle();
  const err = new Error("leadership lost");
  proposed[1]!.reject(err);
  assert.equal(await first, "a@0");
  for (const p of merged) await assert.rejects(p, (e) => e === err);
  // The lane is idle again: the next set goes out at once.
  const unmatched = [produce(1, "d"), produce(1, "e")];
  assert.deepEqual(proposed.at(-1)?.sets, ["d"]);
  proposed.at(-1)!.resolve([]);
  await assert.rejects(unmatched[0]!, RangeError);
  await settle();
  proposed.at(-1)!.resolve(null as unknown as string[]);
  await assert.rejects(unmatched[1]!, RangeError);
});

Deno.test("ProduceBatcher.close sends the waiting sets and waits no more", () => {
  const { proposed, produce, batcher } = setup();
  void produce(1, "a");
  void produce(1, "b");
  batcher.close();
  void produce(1, "c");
  assert.deepEqual(proposed.map((p) => p.sets), [["a"], ["b"], ["c"]]);
  assert.deepEqual(batcher.stats, { entries: 3, recordSets: 3 });
});
