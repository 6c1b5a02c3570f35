/**
 * Raft host benchmark (task bench:raft): three host processes
 * (tests/raft_node_main.ts) on loopback, fresh data dirs per scenario.
 *   - committed proposals/s and MB/s for 16 B, 128 B and 1 KiB payloads,
 *     1 group and 64 groups (closed loop, many proposals in flight);
 *   - commit latency p50/p99 at a moderate rate (one proposal in flight per group);
 *   - CPU of the three hosts holding 1,000 idle groups (/proc/<pid>/stat),
 *     and holding one, which is what a host costs by itself;
 *   - time to elect a new leader after the leader's host is killed.
 * Usage: deno run -A scripts/bench_raft.ts [--seconds 3] [--only TEXT]
 *   [--cpu-prof-dir DIR]
 * --only runs the scenarios whose name contains TEXT ("64 group(s), 128 B");
 * --cpu-prof-dir makes every host process write a V8 CPU profile there.
 */
import { parseArgs } from "node:util";
import { freePort, NodeProcess, sleep } from "../tests/raft_node_process.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    only: { type: "string", default: "" },
    "cpu-prof-dir": { type: "string" },
  },
});
const seconds = Number(values.seconds);
const profDir = values["cpu-prof-dir"];
const denoFlags = profDir === undefined
  ? []
  : ["--cpu-prof", `--cpu-prof-dir=${profDir}`];
const ids = [1, 2, 3];

interface Cluster {
  nodes: Map<number, NodeProcess>;
  root: string;
}

async function startCluster(
  options: {
    groups: number;
    payloadBytes?: number;
    inflight?: number;
    /** The hosts' tick; raft_node_main's default is 10 ms. */
    tickMs?: number;
    quiet?: boolean;
    onLine?: (line: string) => void;
  },
): Promise<Cluster> {
  const peersArg = ids.map((id) => `${id}=127.0.0.1:${freePort()}`).join(",");
  const root = Deno.makeTempDirSync({ prefix: "bench-raft-" });
  const nodes = new Map<number, NodeProcess>();
  for (const id of ids) {
    const args = [
      "--id",
      String(id),
      "--dir",
      `${root}/n${id}`,
      "--peers",
      peersArg,
      "--groups",
      String(options.groups),
      "--payload-bytes",
      String(options.payloadBytes ?? 16),
      "--inflight",
      String(options.inflight ?? 1),
    ];
    if (options.tickMs !== undefined) {
      args.push("--tick-ms", String(options.tickMs));
    }
    if (options.quiet !== false) args.push("--quiet");
    args.push("--machine", "count");
    nodes.set(
      id,
      new NodeProcess(args, {
        denoFlags,
        ...(options.onLine ? { onLine: options.onLine } : {}),
      }),
    );
  }
  for (const n of nodes.values()) await n.waitFor((l) => l === "ready");
  return { nodes, root };
}

async function stopCluster(c: Cluster): Promise<void> {
  // A profile is written only on a clean exit.
  if (profDir !== undefined) {
    for (const n of c.nodes.values()) await n.send("exit").catch(() => {});
    await sleep(2000);
  }
  for (const n of c.nodes.values()) await n.kill();
  Deno.removeSync(c.root, { recursive: true });
}

async function leaders(n: NodeProcess): Promise<Record<string, number>> {
  return JSON.parse(await n.ask("leaders", "leaders"));
}

async function waitForLeaders(c: Cluster, groups: number): Promise<void> {
  const first = c.nodes.values().next().value!;
  for (let i = 0; i < 500; i++) {
    const l = await leaders(first);
    if (Object.values(l).filter((x) => x !== 0).length === groups) return;
    await sleep(20);
  }
  throw new Error("No leaders elected");
}

async function totals(c: Cluster): Promise<{ acked: number; bytes: number }> {
  let acked = 0;
  let bytes = 0;
  for (const n of c.nodes.values()) {
    const s = JSON.parse(await n.ask("stats", "stats"));
    acked += s.acked;
    bytes += s.bytes;
  }
  return { acked, bytes };
}

async function throughput(groups: number, payloadBytes: number) {
  const inflight = Math.max(64, Math.ceil(2048 / groups));
  const c = await startCluster({ groups, payloadBytes, inflight });
  try {
    await waitForLeaders(c, groups);
    for (const n of c.nodes.values()) await n.send("propose on");
    await sleep(500); // warm-up
    const pids = [...c.nodes.values()].map((n) => n.pid);
    const before = await totals(c);
    const cpuBefore = pids.map(cpuTicks);
    const startMs = performance.now();
    await sleep(seconds * 1000);
    const after = await totals(c);
    const cpuAfter = pids.map(cpuTicks);
    const elapsedS = (performance.now() - startMs) / 1000;
    for (const n of c.nodes.values()) await n.send("propose off");
    const acked = after.acked - before.acked;
    const rate = acked / elapsedS;
    const mbps = (after.bytes - before.bytes) / elapsedS / 1e6;
    // CPU per proposal, summed over the hosts: less swayed than the rate by other load on the machine.
    let cpuS = 0;
    for (const [i, t] of cpuAfter.entries()) {
      cpuS += (t - cpuBefore[i]!) / CLK_TCK;
    }
    return { rate, mbps, cpuUs: cpuS / acked * 1e6 };
  } finally {
    await stopCluster(c);
  }
}

async function latency() {
  const samples: number[] = [];
  const c = await startCluster({
    groups: 16,
    payloadBytes: 128,
    inflight: 1,
    quiet: false,
    onLine: (line) => {
      if (line.startsWith("ack ")) samples.push(Number(line.split(" ")[3]));
    },
  });
  try {
    await waitForLeaders(c, 16);
    for (const n of c.nodes.values()) await n.send("propose on");
    await sleep(500);
    samples.length = 0;
    await sleep(seconds * 1000);
    for (const n of c.nodes.values()) await n.send("propose off");
    samples.sort((a, b) => a - b);
    const pick = (q: number) =>
      samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ??
        NaN;
    return {
      rate: samples.length / seconds,
      p50: pick(0.5),
      p99: pick(0.99),
    };
  } finally {
    await stopCluster(c);
  }
}

/** Linux USER_HZ: the unit of the CPU times in /proc/<pid>/stat. */
const CLK_TCK = 100;

function cpuTicks(pid: number): number {
  // Fields after the parenthesised command: utime and stime are 14th and 15th overall.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

async function idleCpu(groups: number, tickMs: number) {
  const c = await startCluster({ groups, tickMs });
  try {
    await waitForLeaders(c, groups);
    await sleep(3000); // let every group quiesce
    const pids = [...c.nodes.values()].map((n) => n.pid);
    const before = pids.map(cpuTicks);
    const startMs = performance.now();
    await sleep(seconds * 1000);
    const elapsedS = (performance.now() - startMs) / 1000;
    return pids.map((pid, i) =>
      (cpuTicks(pid) - before[i]!) / CLK_TCK / elapsedS * 100
    );
  } finally {
    await stopCluster(c);
  }
}

async function failover() {
  const c = await startCluster({ groups: 1 });
  try {
    await waitForLeaders(c, 1);
    await sleep(500);
    const first = c.nodes.values().next().value!;
    const old = (await leaders(first))["1"]!;
    const startMs = performance.now();
    await c.nodes.get(old)!.kill();
    const rest = ids.filter((id) => id !== old).map((id) => c.nodes.get(id)!);
    for (;;) {
      const seen = await Promise.all(
        rest.map(async (n) => (await leaders(n))["1"]),
      );
      if (seen.every((l) => l !== 0 && l !== old && l === seen[0])) break;
      if (performance.now() - startMs > 20000) throw new Error("No new leader");
      await sleep(5);
    }
    return performance.now() - startMs;
  } finally {
    await stopCluster(c);
  }
}

/** Each scenario names itself and measures into a result text. */
const scenarios: [string, () => Promise<string>][] = [];
for (const groups of [1, 64]) {
  for (const payloadBytes of [16, 128, 1024]) {
    scenarios.push([
      `throughput ${groups} group(s), ${payloadBytes} B`,
      async () => {
        const { rate, mbps, cpuUs } = await throughput(groups, payloadBytes);
        return `${Math.round(rate).toLocaleString("en")} proposals/s, ${
          mbps.toFixed(1)
        } MB/s, ${cpuUs.toFixed(1)} µs CPU/proposal`;
      },
    ]);
  }
}
scenarios.push([
  "commit latency, 16 groups x 1 in flight, 128 B",
  async () => {
    const lat = await latency();
    return `p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms at ${
      Math.round(lat.rate)
    } proposals/s`;
  },
]);
// At 50 ms, a broker's default tick (raft.rtt_millisecond), and at the 10 ms
// the other scenarios run at; with one group, what a host costs by itself.
for (const [groups, tickMs] of [[1000, 50], [1000, 10], [1, 50]] as const) {
  scenarios.push([
    `CPU of 3 hosts, ${groups.toLocaleString("en")} idle group${
      groups === 1 ? "" : "s"
    }, ${tickMs} ms tick`,
    async () => {
      const cpu = await idleCpu(groups, tickMs);
      return cpu.map((p) => `${p.toFixed(1)}%`).join(", ") + " of a core";
    },
  ]);
}
scenarios.push([
  "new leader after SIGKILL of the leader",
  async () => `${(await failover()).toFixed(0)} ms`,
]);

const rows: string[][] = [["scenario", "result"]];
for (const [name, measure] of scenarios) {
  if (!name.includes(values.only)) continue;
  rows.push([name, await measure()]);
  console.error(rows[rows.length - 1]!.join(": "));
}

const width = Math.max(...rows.map((r) => r[0]!.length));
for (const r of rows) console.log(`${r[0]!.padEnd(width)}  ${r[1]}`);
