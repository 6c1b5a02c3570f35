import type { Entry, NodeId } from "../core/mod.ts";
import { type LeaderChange, RaftHost, type StateMachine } from "../host/mod.ts";
import { MemoryNetwork } from "../transport/mod.ts";
import { SimViolationError } from "./checker.ts";
import { SeededRng } from "./rng.ts";
import { SimClock } from "./sim_clock.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const GROUP_ID = 1;
const NODE_IDS: readonly NodeId[] = [1, 2, 3];

/** Shape, Raft settings and fault rates of one host simulation; all drawn from the seed. */
export interface HostSimOptions {
  seed: number;
  /** Payloads proposed during the fault phase. */
  proposals: number;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Each timer firing is late by 0..jitterMsMax, reordering the hosts. */
  jitterMsMax: number;
  /** The workload proposes once every this many ms. */
  proposeEveryMs: number;
  /** Per tick: the leader (or, without one, any host) stops; at most one is down. */
  crashRate: number;
  /** Per tick: a stopped host restarts on its WAL directory. */
  restartRate: number;
  /** Per tick: one host is cut off from the others; healRate undoes it. */
  partitionRate: number;
  healRate: number;
  snapshotEntries: number;
  compactionOverheadEntries: number;
  /** Small segments roll often, so that compaction deletes them under faults. */
  walSegmentBytes: number;
  /** 0 syncs every turn in the background, Infinity never (RaftHostOptions). */
  backgroundSyncBytes: number;
  /**
   * The state machine's durable state (durableSnapshot) trails its applied
   * one by this many items, as a partition's background sync does; null:
   * it offers only its present state.
   */
  durableLag: number | null;
  /** After healing, a new proposal must apply on every host within this. */
  livenessMs: number;
}

/** Draws a swarm of options from the seed; `overrides` pin some. */
export function hostSimOptionsFromSeed(
  seed: number,
  overrides: Partial<Omit<HostSimOptions, "seed">> = {},
): HostSimOptions {
  const rng = new SeededRng(seed ^ 0x4057);
  const tickMs = 10;
  const electionTicks = rng.between(5, 10);
  return {
    seed,
    proposals: 40,
    tickMs,
    electionTicks,
    heartbeatTicks: rng.between(1, 2),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    jitterMsMax: rng.pick([0, 2, 5]),
    proposeEveryMs: rng.pick([5, 20, 50]),
    crashRate: rng.pick([0.01, 0.03, 0.08]),
    restartRate: rng.pick([0.05, 0.2]),
    partitionRate: rng.pick([0, 0.01, 0.03]),
    healRate: rng.pick([0.05, 0.2]),
    snapshotEntries: rng.pick([0, 4, 16]),
    compactionOverheadEntries: rng.pick([0, 2, 8]),
    livenessMs: 40 * electionTicks * tickMs,
    walSegmentBytes: rng.pick([4096, 64 * 1024 * 1024]),
    backgroundSyncBytes: rng.pick([0, 256, Infinity]),
    durableLag: rng.pick([null, 0, 3]),
    ...overrides,
  };
}

/** What a passing run did; equal for equal options (the test of determinism). */
export interface HostSimResult {
  /** Simulated ms until every host applied the final proposal. */
  elapsedMs: number;
  /** The canonical applied history, as "index@term:payload". */
  history: string[];
  /** Leader of each term that had one, as "term:leader". */
  leaders: string[];
  crashes: number;
  partitions: number;
}

/** A failed host simulation: what broke, how to replay it, and what led there. */
export class HostSimFailure extends Error {
  override name = "HostSimFailure";
  readonly options: HostSimOptions;
  readonly trace: string[];
  constructor(
    cause: Error,
    details: { options: HostSimOptions; trace: string[]; nowMs: number },
  ) {
    super(
      `Host simulation seed ${details.options.seed} failed at ${details.nowMs} ms: ${cause.message}\n` +
        `replay: ${hostReplayCommand(details.options)}\n` +
        `options: ${JSON.stringify(details.options)}\n` +
        `last trace lines:\n${details.trace.join("\n")}`,
      { cause },
    );
    this.options = details.options;
    this.trace = details.trace;
  }
}

export function hostReplayCommand(options: HostSimOptions): string {
  return `deno task sim --host --seed ${options.seed} --proposals ${options.proposals}`;
}

/** The applied history as a list; a snapshot is the list itself. */
class HistoryMachine implements StateMachine {
  items: string[] = [];
  /** Bumped on restore: the checker then rechecks the list from its start. */
  restores = 0;
  apply(entries: Entry[]): string[] {
    return entries.map((e) => {
      const item = `${e.index}@${e.term}:${decoder.decode(e.data)}`;
      this.items.push(item);
      return item;
    });
  }
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(decoder.decode(data));
    this.restores++;
  }
}

/** A HistoryMachine whose durable state is its list but the last `lag` items. */
class LaggingHistoryMachine extends HistoryMachine {
  readonly #lag: number;
  constructor(lag: number) {
    super();
    this.#lag = lag;
  }
  durableSnapshot(after: number): { index: number; data: Uint8Array } | null {
    const kept = this.items.length - this.#lag;
    if (kept <= 0) return null;
    // An item is "index@term:payload"; entries between items carry no data.
    const index = Number.parseInt(this.items[kept - 1]!, 10);
    if (index <= after) return null;
    const data = encoder.encode(JSON.stringify(this.items.slice(0, kept)));
    return { index, data };
  }
}

/**
 * The safety properties of checker.ts, seen from outside real hosts: one
 * leader per term across every host's view; every state machine's applied
 * list a prefix of one canonical history, each payload in it once; and
 * every acknowledged proposal in that history (and, at the end, applied on
 * every host).
 */
class HostChecker {
  readonly leaders = new Map<number, NodeId>();
  readonly canonical: string[] = [];
  readonly #payloads = new Set<string>();
  readonly #checked = new Map<
    HistoryMachine,
    { upTo: number; restores: number }
  >();
  readonly acked = new Set<string>();

  onLeader(observer: NodeId, e: LeaderChange): void {
    if (e.leader === 0) return;
    const known = this.leaders.get(e.term);
    if (known === undefined) this.leaders.set(e.term, e.leader);
    else if (known !== e.leader) {
      throw new SimViolationError(
        `Election safety broken: host ${observer} sees ${e.leader} lead term ${e.term}, elsewhere ${known}`,
      );
    }
  }

  /** Acknowledged during the event being run: checked once the histories are. */
  #freshAcks: [NodeId, string][] = [];

  onAck(node: NodeId, item: string): void {
    this.#freshAcks.push([node, item]);
  }

  /** After checkApplied of every host: what was acknowledged was applied. */
  checkAcks(): void {
    for (const [node, item] of this.#freshAcks) {
      if (!this.canonical.includes(item)) {
        throw new SimViolationError(
          `Host ${node} acknowledged "${item}", which is not in the applied history`,
        );
      }
      this.acked.add(item);
    }
    this.#freshAcks = [];
  }

  checkApplied(node: NodeId, sm: HistoryMachine): void {
    let mark = this.#checked.get(sm);
    if (mark === undefined || mark.restores !== sm.restores) {
      mark = { upTo: 0, restores: sm.restores };
      this.#checked.set(sm, mark);
    }
    for (let p = mark.upTo; p < sm.items.length; p++) {
      const item = sm.items[p]!;
      const expected = this.canonical[p];
      if (expected === undefined) {
        const payload = item.slice(item.indexOf(":") + 1);
        if (this.#payloads.has(payload)) {
          throw new SimViolationError(
            `State machine safety broken at host ${node}: "${payload}" applied twice (again as ${item})`,
          );
        }
        this.#payloads.add(payload);
        this.canonical.push(item);
      } else if (expected !== item) {
        throw new SimViolationError(
          `State machine safety broken at host ${node}: applied "${item}" at ${p}, canonical has "${expected}"`,
        );
      }
    }
    mark.upTo = sm.items.length;
  }

  /** Nothing acknowledged is lost: a host that caught up holds all of it. */
  checkHoldsAcked(node: NodeId, sm: HistoryMachine): void {
    const held = new Set(sm.items);
    for (const item of this.acked) {
      if (!held.has(item)) {
        throw new SimViolationError(
          `Acknowledged "${item}" lost: host ${node} caught up without it`,
        );
      }
    }
  }
}

interface SimHost {
  id: NodeId;
  dataDir: string;
  host: RaftHost | null;
  sm: HistoryMachine | null;
}

const TRACE_LINES = 50;

/**
 * Three real RaftHosts, one group, WALs in a temporary directory, over a
 * MemoryNetwork, with all time on one SimClock. The workload proposes to
 * whichever host leads; faults stop hosts (a leader by preference) and
 * restart them on their WAL, and cut one host off. Then everything heals
 * and a last proposal must apply everywhere. Safety is checked after every
 * event.
 */
export async function runHostSimulation(
  options: HostSimOptions,
): Promise<HostSimResult> {
  const sim = new HostSimulation(options);
  try {
    return await sim.run();
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    throw new HostSimFailure(e, {
      options,
      trace: sim.traceTail(),
      nowMs: sim.clock.nowMs(),
    });
  } finally {
    await sim.close();
  }
}

class HostSimulation {
  readonly clock: SimClock;
  readonly #options: HostSimOptions;
  readonly #rng: SeededRng;
  readonly #network: MemoryNetwork;
  readonly #checker = new HostChecker();
  readonly #hosts: SimHost[] = [];
  readonly #trace: string[] = [];
  #rootDir = "";
  #proposed = 0;
  #crashes = 0;
  #partitions = 0;
  #cutOff: NodeId | null = null;
  #faults = true;
  /** Set when a hook outside an awaited event (a listener) found a violation. */
  #violation: Error | null = null;

  constructor(options: HostSimOptions) {
    this.#options = options;
    this.#rng = new SeededRng(options.seed);
    this.clock = new SimClock({
      rng: this.#rng.fork(),
      jitterMsMax: options.jitterMsMax,
    });
    this.#network = new MemoryNetwork({ clock: this.clock });
  }

  traceTail(): string[] {
    return this.#trace.slice(-TRACE_LINES);
  }

  #log(line: string): void {
    this.#trace.push(`${this.clock.nowMs()} ms: ${line}`);
    if (this.#trace.length > 4 * TRACE_LINES) {
      this.#trace.splice(0, this.#trace.length - TRACE_LINES);
    }
  }

  async run(): Promise<HostSimResult> {
    const o = this.#options;
    this.#rootDir = await Deno.makeTempDir({ prefix: "raftq-host-sim-" });
    for (const id of NODE_IDS) {
      const h: SimHost = {
        id,
        dataDir: `${this.#rootDir}/n${id}`,
        host: null,
        sm: null,
      };
      this.#hosts.push(h);
      await this.#start(h);
    }
    this.clock.setInterval(() => this.#propose(), o.proposeEveryMs);
    this.clock.setInterval(() => this.#fault(), o.tickMs);

    while (this.#proposed < o.proposals) await this.#step();

    // Liveness: heal, restart, and a last proposal must reach every host.
    this.#faults = false;
    this.#network.heal();
    this.#cutOff = null;
    for (const h of this.#hosts) if (h.host === null) await this.#start(h);
    this.#log("healed");
    const healedMs = this.clock.nowMs();
    let final: string | null = null;
    let attempt = 0;
    let lastTryMs = -Infinity;
    const caughtUp = () =>
      final !== null &&
      this.#hosts.every((h) => h.sm?.items.includes(final!) === true);
    while (!caughtUp()) {
      if (this.clock.nowMs() - healedMs > o.livenessMs) {
        throw new SimViolationError(
          `Liveness: no proposal applied on every host within ${o.livenessMs} ms of healing`,
        );
      }
      if (final === null && this.clock.nowMs() - lastTryMs >= o.tickMs) {
        lastTryMs = this.clock.nowMs();
        const leader = this.#leader();
        if (leader !== null) {
          const payload = `final${attempt++}`;
          this.#submit(leader, payload, (item) => (final = item));
        }
      }
      await this.#step();
    }
    for (const h of this.#hosts) this.#checker.checkHoldsAcked(h.id, h.sm!);
    return {
      elapsedMs: this.clock.nowMs(),
      history: [...this.#checker.canonical],
      leaders: [...this.#checker.leaders].map(([t, l]) => `${t}:${l}`),
      crashes: this.#crashes,
      partitions: this.#partitions,
    };
  }

  async close(): Promise<void> {
    for (const h of this.#hosts) {
      try {
        await h.host?.stop();
      } catch (err) {
        // After a failure a host may not stop cleanly; the failure is what gets reported.
        this.#log(`host ${h.id} failed to stop: ${err}`);
      }
    }
    if (this.#rootDir !== "") {
      await Deno.remove(this.#rootDir, { recursive: true });
    }
  }

  /** One simulated event, then every safety check. */
  async #step(): Promise<void> {
    if (!(await this.clock.step())) {
      throw new SimViolationError("Simulation ran out of events");
    }
    if (this.#violation !== null) throw this.#violation;
    for (const h of this.#hosts) {
      if (h.sm !== null) this.#checker.checkApplied(h.id, h.sm);
    }
    this.#checker.checkAcks();
  }

  async #start(h: SimHost): Promise<void> {
    const o = this.#options;
    const host = new RaftHost({
      nodeId: h.id,
      dataDir: h.dataDir,
      listen: { hostname: "127.0.0.1", port: 0 },
      peers: new Map(),
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      checkQuorum: o.checkQuorum,
      preVote: o.preVote,
      maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 16,
      maxInMemLogBytes: 1 << 20,
      snapshotEntries: o.snapshotEntries,
      compactionOverheadEntries: o.compactionOverheadEntries,
      walSegmentBytes: o.walSegmentBytes,
      backgroundSyncBytes: o.backgroundSyncBytes,
      transport: this.#network.transport(h.id),
      clock: this.clock,
      rngSeed: this.#rng.nextInt(4294967296),
    });
    await host.start();
    // A restarted host is still cut off if it was.
    if (this.#cutOff === h.id) this.#cut(h.id);
    const sm = o.durableLag === null
      ? new HistoryMachine()
      : new LaggingHistoryMachine(o.durableLag);
    host.onLeaderChange((e) => {
      this.#log(`host ${h.id} sees leader ${e.leader} in term ${e.term}`);
      try {
        this.#checker.onLeader(h.id, e);
      } catch (err) {
        this.#violation ??= err instanceof Error ? err : new Error(String(err));
      }
    });
    host.startGroup(GROUP_ID, { voters: [...NODE_IDS], stateMachine: sm });
    h.host = host;
    h.sm = sm;
    this.#log(`host ${h.id} started`);
  }

  async #stop(h: SimHost): Promise<void> {
    const host = h.host!;
    h.host = null;
    h.sm = null;
    await host.stop();
    this.#crashes++;
    this.#log(`host ${h.id} stopped`);
  }

  #cut(id: NodeId): void {
    for (const other of NODE_IDS) {
      if (other !== id) this.#network.cut(id, other);
    }
  }

  /** A host that believes it leads (in a partition, perhaps wrongly). */
  #leader(): SimHost | null {
    const leaders = this.#hosts.filter((h) =>
      h.host !== null && h.host.leaderOf(GROUP_ID) === h.id
    );
    return leaders.length === 0 ? null : this.#rng.pick(leaders);
  }

  #propose(): void {
    if (!this.#faults || this.#proposed >= this.#options.proposals) return;
    const leader = this.#leader();
    if (leader === null) return;
    this.#submit(leader, `p${this.#proposed++}`, () => {});
  }

  #submit(h: SimHost, payload: string, onAck: (item: string) => void): void {
    this.#log(`propose "${payload}" to host ${h.id}`);
    h.host!.propose(GROUP_ID, encoder.encode(payload)).then(
      ({ result }) => {
        const item = String(result);
        this.#log(`host ${h.id} acknowledged ${item}`);
        this.#checker.onAck(h.id, item);
        onAck(item);
      },
      // A rejected proposal may still commit; the history checks cover it.
      (err) => this.#log(`host ${h.id} rejected "${payload}": ${err.name}`),
    );
  }

  async #fault(): Promise<void> {
    if (!this.#faults) return;
    const o = this.#options;
    const down = this.#hosts.filter((h) => h.host === null);
    if (down.length === 0 && this.#rng.chance(o.crashRate)) {
      await this.#stop(this.#leader() ?? this.#rng.pick(this.#hosts));
    } else if (down.length > 0 && this.#rng.chance(o.restartRate)) {
      await this.#start(this.#rng.pick(down));
    }
    if (this.#cutOff === null && this.#rng.chance(o.partitionRate)) {
      this.#cutOff = this.#rng.pick(NODE_IDS);
      this.#cut(this.#cutOff);
      this.#partitions++;
      this.#log(`host ${this.#cutOff} cut off`);
    } else if (this.#cutOff !== null && this.#rng.chance(o.healRate)) {
      this.#network.heal();
      this.#log(`host ${this.#cutOff} reconnected`);
      this.#cutOff = null;
    }
  }
}
