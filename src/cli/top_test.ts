import assert from "node:assert/strict";
import { type Sample, topTable } from "./top.ts";

function sampleAt(
  at: number,
  topics: Record<string, [partitions: number, endOffsets: bigint]>,
): Sample {
  return {
    at,
    topics: new Map(
      Object.entries(topics).map((
        [name, [partitions, endOffsets]],
      ) => [name, { partitions, endOffsets }]),
    ),
  };
}

Deno.test("topTable rates each topic by its end offsets' growth per second, busiest first, and leaves new or recreated topics unrated", () => {
  const table = topTable(
    sampleAt(1_000, { idle: [1, 7n], busy: [3, 100n], recreated: [1, 50n] }),
    sampleAt(3_000, {
      idle: [1, 7n],
      busy: [3, 1_100n],
      recreated: [1, 2n],
      fresh: [2, 4n],
    }),
  );
  const rows = table.trim().split("\n").map((l) => l.split(/\s{2,}/));
  assert.deepEqual(rows, [
    ["TOPIC", "PARTITIONS", "RECORDS/S", "END OFFSETS"],
    ["busy", "3", "500.0", "1100"],
    ["idle", "1", "0.0", "7"],
    ["fresh", "2", "-", "4"],
    ["recreated", "1", "-", "2"],
  ]);
});
