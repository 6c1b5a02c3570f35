/**
 * `deno task bench:elections`: how many leader changes an overload causes
 * for each election timeout, the other side of a shorter failover. Three
 * brokers on this machine, an RF=3 topic of 8 partitions, and two kcat
 * producers (acks=all) sending MESSAGES × 1 KiB each as fast as they can;
 * the figure is raftq_raft_leader_changes_total per broker over the load.
 *
 *   deno task bench:elections [--election-rtt 10]... [--messages 150000]
 *
 * On a machine with fewer cores than processes, event-loop stalls then
 * outlast a short election timeout: that is the point of the measurement.
 */
import { parseArgs } from "node:util";
import { KafkaClient } from "../src/client/mod.ts";
import { Cluster } from "../tests/cluster_harness.ts";
import { hasKcat } from "../tests/harness.ts";
import { kcatInput, kcatProduceArgs } from "./kcat.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    "election-rtt": { type: "string", multiple: true, default: ["8", "10"] },
    messages: { type: "string", default: "150000" },
  },
});
const MESSAGES = Number(flags.messages);
const PRODUCERS = 2;
const LOAD_LIMIT_MS = 60_000;

async function leaderChanges(cluster: Cluster): Promise<number[]> {
  return await Promise.all(cluster.members.map(async (m) => {
    const text = await (await fetch(`${m.adminUrl}/metrics`)).text();
    const line = text.split("\n").find((l) =>
      l.startsWith("raftq_raft_leader_changes_total ")
    );
    return Number(line?.split(" ")[1] ?? NaN);
  }));
}

/** Runs the load on a fresh cluster; its duration (null: unfinished) and leader changes. */
async function measure(electionRtt: string, input: string) {
  const cluster = await Cluster.start({
    set: [`raft.election_rtt=${electionRtt}`],
  });
  try {
    const admin = await KafkaClient.connect(cluster.bootstrap(), {
      retries: 12,
    });
    await admin.createTopic("load", { partitions: 8, replicationFactor: 3 });
    await admin.close();
    const before = await leaderChanges(cluster);
    const t0 = Date.now();
    // An overload that never ends is itself the finding: kill it at the limit.
    const limit = AbortSignal.timeout(LOAD_LIMIT_MS);
    const producers = Array.from(
      { length: PRODUCERS },
      () =>
        new Deno.Command("kcat", {
          args: [
            ...kcatProduceArgs(cluster.bootstrap(), "load", -1),
            "-l",
            input,
          ],
          stdout: "null",
          stderr: "null",
          signal: limit,
        }).spawn(),
    );
    await Promise.all(producers.map((p) => p.status));
    const elapsedMs = limit.aborted ? null : Date.now() - t0;
    const after = await leaderChanges(cluster);
    return { elapsedMs, changes: after.map((a, i) => a - before[i]!) };
  } finally {
    await cluster.destroy();
  }
}

if (!hasKcat) {
  console.log("bench:elections needs kcat: skipped");
  Deno.exit(0);
}
const input = await Deno.makeTempFile({ suffix: ".txt" });
try {
  await Deno.writeFile(input, kcatInput(1023, MESSAGES));
  console.log(
    `| election_rtt | load of ${PRODUCERS} × ${MESSAGES} × 1 KiB | leader changes per broker |`,
  );
  console.log("| ---: | ---: | --- |");
  for (const e of flags["election-rtt"]) {
    const { elapsedMs, changes } = await measure(e, input);
    console.log(
      `| ${e} | ${
        elapsedMs === null
          ? `unfinished after ${LOAD_LIMIT_MS} ms`
          : `${elapsedMs} ms`
      } | ${changes.join(", ")} |`,
    );
  }
} finally {
  await Deno.remove(input);
}
