/**
 * Measures the log cleaner on a Schema-Registry-style workload: one
 * partition, a few hundred keys each rewritten thousands of times, in
 * batches of 50 records of ~200 bytes. Prints the disk size before and after
 * cleaning and the cleaner's read throughput.
 *
 *   deno run -A scripts/bench_cleaner.ts [keys] [rounds]
 */
import { buildRecordBatch, validateRecordSet } from "../src/protocol/mod.ts";
import { PartitionLog } from "../src/storage/mod.ts";

const keys = Number(Deno.args[0] ?? 200);
const rounds = Number(Deno.args[1] ?? 2_000);
const dir = Deno.makeTempDirSync({ prefix: "raftq-bench-cleaner-" });
const log = PartitionLog.open(dir, {
  compact: true,
  segmentBytes: 8 << 20,
  minCleanableDirtyRatio: 0,
});
const utf8 = new TextEncoder();
const value = utf8.encode("x".repeat(200));
try {
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < keys; k += 50) {
      const batch = buildRecordBatch(
        Array.from({ length: Math.min(50, keys - k) }, (_, i) => ({
          key: utf8.encode(`subject-${k + i}`),
          value,
        })),
      );
      log.append(batch, validateRecordSet(batch));
    }
  }
  log.sync();
  const before = log.sizeBytes;
  const result = await log.clean({
    keyMapBytes: 64 << 20,
    ioBytesPerSec: Number.MAX_SAFE_INTEGER,
  });
  const after = log.sizeBytes;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  console.log(
    `records ${keys * rounds}, before ${mb(before)} MB, after ${
      mb(after)
    } MB (active segment included), cleaned ${
      mb(result?.sourceBytes ?? 0)
    } -> ${mb(result?.targetBytes ?? 0)} MB in ${result?.durationMs} ms, ${
      mb((result?.readBytes ?? 0) / ((result?.durationMs ?? 1) / 1000))
    } MB/s read`,
  );
} finally {
  log.close();
  Deno.removeSync(dir, { recursive: true });
}
