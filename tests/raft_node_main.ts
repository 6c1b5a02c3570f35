/**
 * One Raft host process for tests/raft_e2e_test.ts and scripts/bench_raft.ts.
 *
 * Args: --id N --dir PATH --peers "1=127.0.0.1:port,2=..." --groups G
 * [--tick-ms 10] [--payload-bytes 32] [--inflight 4] [--machine list|count] [--quiet]
 * [--max-in-mem-bytes 4194304]
 * Starts groups 1..G with every peer as voter; each group's state machine
 * is the list of applied payloads. Commands on stdin (one per line):
 *   propose on|off   keep `inflight` proposals outstanding in each group led here
 *   dump PATH        write {group: [payload, ...]} as JSON to PATH, then print "dumped"
 *   leaders          print "leaders {group: leader}"
 *   stats            print "stats {acked, bytes}"
 *   exit             stop the host and exit 0
 * Output (stdout, one per line): "ready", "ack <group> <payload> <latencyMs>", and the answers above.
 */
import { parseArgs } from "node:util";
import type { Entry } from "../src/raft/core/mod.ts";
import { RaftHost, type StateMachine } from "../src/raft/host/mod.ts";
import type { Address } from "../src/raft/transport/mod.ts";

const { values } = parseArgs({
  options: {
    id: { type: "string" },
    dir: { type: "string" },
    peers: { type: "string" },
    groups: { type: "string", default: "16" },
    "tick-ms": { type: "string", default: "10" },
    "max-in-mem-bytes": { type: "string", default: String(4 << 20) },
    "payload-bytes": { type: "string", default: "32" },
    inflight: { type: "string", default: "4" },
    quiet: { type: "boolean", default: false },
    /** "list" keeps every payload (checked by the e2e test); "count" keeps a count (cheap snapshots for benchmarks). */
    machine: { type: "string", default: "list" },
  },
});
const nodeId = Number(values.id);
const groupCount = Number(values.groups);
const inflight = Number(values.inflight);
const payloadBytes = Number(values["payload-bytes"]);
if (!(nodeId > 0) || values.dir === undefined || values.peers === undefined) {
  throw new TypeError(
    "Usage: --id N --dir PATH --peers 1=host:port,... [--groups G]",
  );
}
const peers = new Map<number, Address>();
for (const part of values.peers.split(",")) {
  const m = /^(\d+)=([^:]+):(\d+)$/.exec(part);
  if (!m) {
    throw new TypeError(
      `Invalid --peers entry "${part}": expected id=host:port`,
    );
  }
  peers.set(Number(m[1]), { hostname: m[2]!, port: Number(m[3]) });
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** Records applied payloads ("list") or only their number ("count", so snapshots stay tiny). */
class AppliedMachine implements StateMachine {
  items: string[] = [];
  count = 0;
  readonly #keepItems = values.machine === "list";
  apply(entries: Entry[]): void {
    this.count += entries.length;
    if (this.#keepItems) {
      for (const e of entries) this.items.push(dec.decode(e.data));
    }
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ count: this.count, items: this.items }));
  }
  restore(data: Uint8Array): void {
    ({ count: this.count, items: this.items } = JSON.parse(dec.decode(data)));
  }
}

const host = new RaftHost({
  nodeId,
  dataDir: values.dir,
  listen: peers.get(nodeId)!,
  peers,
  tickMs: Number(values["tick-ms"]),
  electionTicks: 10,
  heartbeatTicks: 2,
  checkQuorum: true,
  preVote: true,
  maxSizePerMsg: 1 << 20,
  maxInflightMsgs: 256,
  maxInMemLogBytes: Number(values["max-in-mem-bytes"]),
});
await host.start();
const machines = new Map<number, AppliedMachine>();
for (let g = 1; g <= groupCount; g++) {
  const sm = new AppliedMachine();
  machines.set(g, sm);
  host.startGroup(g, { voters: [...peers.keys()], stateMachine: sm });
}

const out = (line: string) => console.log(line);
const nonce = crypto.randomUUID().slice(0, 8);
let seq = 0;
let proposing = false;
let acked = 0;
let ackedBytes = 0;
const outstanding = new Map<number, number>();
const padding = "x".repeat(Math.max(0, payloadBytes - 24));
const paddingBytes = enc.encode(padding);

/** Payloads are cut from shared slabs: one buffer per proposal would cost more than the engine's work on it. */
let slab = new Uint8Array(0);
let slabUsed = 0;

/** `${head}${padding}` as bytes; the head is ASCII, so no TextEncoder pass over the padding. */
function payloadBytesOf(head: string): Uint8Array {
  const size = head.length + paddingBytes.length;
  if (slabUsed + size > slab.length) {
    slab = new Uint8Array(Math.max(1 << 16, size));
    slabUsed = 0;
  }
  const data = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  for (let i = 0; i < head.length; i++) data[i] = head.charCodeAt(i);
  data.set(paddingBytes, head.length);
  return data;
}

function fill(groupId: number): void {
  while (
    proposing && host.leaderOf(groupId) === nodeId &&
    (outstanding.get(groupId) ?? 0) < inflight
  ) {
    const head = `${nodeId}-${nonce}-${groupId}-${seq++}-`;
    const data = payloadBytesOf(head);
    const startMs = performance.now();
    outstanding.set(groupId, (outstanding.get(groupId) ?? 0) + 1);
    host.propose(groupId, data).then(
      () => {
        acked++;
        ackedBytes += data.length;
        if (!values.quiet) {
          out(
            `ack ${groupId} ${head}${padding} ${
              (performance.now() - startMs).toFixed(3)
            }`,
          );
        }
      },
      () => {
        /* not acknowledged: the test only checks acknowledged proposals */
      },
    ).finally(() => {
      outstanding.set(groupId, (outstanding.get(groupId) ?? 1) - 1);
      fill(groupId);
    });
  }
}

host.onLeaderChange((e) => fill(e.groupId));
const refill = setInterval(() => {
  for (let g = 1; g <= groupCount; g++) fill(g);
}, 50);

out("ready");
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffered = "";
for await (const chunk of lines) {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const [cmd, arg] = buffered.slice(0, nl).trim().split(" ");
    buffered = buffered.slice(nl + 1);
    if (cmd === "propose") {
      proposing = arg === "on";
      for (let g = 1; g <= groupCount; g++) fill(g);
    } else if (cmd === "dump") {
      const dump: Record<string, string[]> = {};
      for (const [g, sm] of machines) dump[g] = sm.items;
      Deno.writeTextFileSync(arg!, JSON.stringify(dump));
      out("dumped");
    } else if (cmd === "leaders") {
      const leaders: Record<string, number> = {};
      for (let g = 1; g <= groupCount; g++) leaders[g] = host.leaderOf(g);
      out(`leaders ${JSON.stringify(leaders)}`);
    } else if (cmd === "stats") {
      out(`stats ${JSON.stringify({ acked, bytes: ackedBytes })}`);
    } else if (cmd === "exit") {
      clearInterval(refill);
      await host.stop();
      Deno.exit(0);
    }
  }
}
clearInterval(refill);
await host.stop();
