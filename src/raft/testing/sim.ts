import {
  type ConfChange,
  MemoryStorage,
  type Message,
  MessageType,
  type NodeId,
  ProposalDroppedError,
  type UnsafeTestingFaults,
} from "../core/mod.ts";
import { SafetyChecker, SimViolationError } from "./checker.ts";
import { encodePayload, SimReplica } from "./replica.ts";
import { SeededRng } from "./rng.ts";

/** Shape, Raft settings and fault rates of one simulation; all drawn from the seed. */
export interface SimOptions {
  seed: number;
  nodes: number;
  groups: number;
  /** Ticks with faults on; then everything heals and liveness is checked. */
  faultTicks: number;
  /**
   * After healing (faults off, 1-tick delivery), each group must apply a new
   * proposal on every node within this.
   */
  livenessTicks: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  /** Per message. */
  dropRate: number;
  duplicateRate: number;
  /** Messages take 1..delayTicksMax ticks, so they overtake each other. */
  delayTicksMax: number;
  /** Per tick. */
  crashRate: number;
  restartRate: number;
  partitionRate: number;
  healRate: number;
  compactRate: number;
  proposeRate: number;
  transferRate: number;
  readRate: number;
  /** Per tick per group: the leader proposes a membership change. */
  confChangeRate: number;
  /**
   * Per Ready, then per tick: its sync is still running. Its early messages
   * are out, messages keep arriving, and a crash loses the write.
   */
  slowSyncRate: number;
  unsafeTestingFaults?: UnsafeTestingFaults;
}

/** Draws a swarm of options from the seed; `overrides` pin some. */
export function simOptionsFromSeed(
  seed: number,
  overrides: Partial<Omit<SimOptions, "seed">> = {},
): SimOptions {
  const rng = new SeededRng(seed ^ 0x5eed);
  const electionTicks = rng.between(6, 12);
  return {
    seed,
    nodes: 3,
    groups: 2,
    faultTicks: 250,
    // Elections, plus a follower catching up one entry per round trip.
    livenessTicks: 20 * electionTicks + 500,
    electionTicks,
    heartbeatTicks: rng.between(1, 2),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    maxInflightMsgs: rng.between(1, 8),
    maxSizePerMsg: rng.pick([16, 64, 4096]),
    dropRate: rng.pick([0, 0.02, 0.1, 0.3]),
    duplicateRate: rng.pick([0, 0.02, 0.1]),
    delayTicksMax: rng.between(1, 4),
    crashRate: rng.pick([0, 0.005, 0.02]),
    restartRate: rng.pick([0.05, 0.2]),
    partitionRate: rng.pick([0, 0.01, 0.03]),
    healRate: rng.pick([0.02, 0.1]),
    compactRate: rng.pick([0, 0.02, 0.1]),
    proposeRate: rng.pick([0.1, 0.5]),
    transferRate: rng.pick([0, 0.005]),
    readRate: rng.pick([0, 0.1]),
    confChangeRate: rng.pick([0, 0.01, 0.03]),
    slowSyncRate: rng.pick([0, 0.3, 0.7]),
    ...overrides,
  };
}

interface InFlight {
  deliverAt: number;
  seq: number;
  group: number;
  message: Message;
}

interface SimNode {
  id: NodeId;
  up: boolean;
  replicas: SimReplica[];
}

/** A failed simulation: what broke, how to replay it, and what led there. */
export class SimFailure extends Error {
  override name = "SimFailure";
  readonly options: SimOptions;
  readonly trace: string[];
  constructor(
    cause: Error,
    details: { options: SimOptions; trace: string[]; tick: number },
  ) {
    super(
      `Simulation seed ${details.options.seed} failed at tick ${details.tick}: ${cause.message}\n` +
        `replay: ${replayCommand(details.options)}\n` +
        `options: ${JSON.stringify(details.options)}\n` +
        `last trace lines:\n${details.trace.join("\n")}`,
      { cause },
    );
    this.options = details.options;
    this.trace = details.trace;
  }
}

export interface SimResult {
  ticks: number;
  /** Payloads applied per group (canonical history length). */
  appliedPerGroup: number[];
  messagesDelivered: number;
  readsAnswered: number;
  confChangesProposed: number;
}

/** The `deno task sim` line that reruns exactly this simulation. */
export function replayCommand(options: SimOptions): string {
  let line =
    `deno task sim --seed ${options.seed} --nodes ${options.nodes} --groups ${options.groups} --fault-ticks ${options.faultTicks}`;
  for (const [fault, on] of Object.entries(options.unsafeTestingFaults ?? {})) {
    if (on === true) line += ` --unsafe ${fault}`;
  }
  return line;
}

const TRACE_LINES = 50;
const MESSAGE_NAMES = Object.fromEntries(
  Object.entries(MessageType).map(([name, code]) => [code, name]),
);

/**
 * N nodes × M groups in one process, all randomness from one seed: a network
 * that drops, delays, duplicates and reorders; partitions; crashes that lose
 * unsynced state; compactions; leader transfers. Safety is checked after every
 * Ready, then faults stop and every group must make progress (liveness).
 */
export function runSimulation(options: SimOptions): SimResult {
  const sim = new Simulation(options);
  try {
    return sim.run();
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    throw new SimFailure(e, {
      options,
      trace: sim.traceTail(),
      tick: sim.now,
    });
  }
}

class Simulation {
  now = 0;
  readonly #options: SimOptions;
  readonly #rng: SeededRng;
  readonly #nodes: SimNode[] = [];
  readonly #checker = new SafetyChecker();
  #inflight: InFlight[] = [];
  #seq = 0;
  /** node → partition side; empty map = fully connected. */
  #sides = new Map<NodeId, number>();
  #faults = true;
  #proposals = 0;
  #reads = 0;
  #readsAnswered = 0;
  #confChanges = 0;
  #delivered = 0;
  #trace: string[] = [];

  constructor(options: SimOptions) {
    this.#options = options;
    this.#rng = new SeededRng(options.seed);
    const voters = Array.from({ length: options.nodes }, (_, i) => i + 1);
    for (const id of voters) {
      const replicas: SimReplica[] = [];
      for (let group = 0; group < options.groups; group++) {
        replicas.push(
          new SimReplica(new MemoryStorage({ voters, learners: [] }), {
            group,
            raft: {
              id,
              electionTicks: options.electionTicks,
              heartbeatTicks: options.heartbeatTicks,
              checkQuorum: options.checkQuorum,
              preVote: options.preVote,
              maxSizePerMsg: options.maxSizePerMsg,
              maxInflightMsgs: options.maxInflightMsgs,
              rng: this.#rng.fork(),
              ...(options.unsafeTestingFaults === undefined
                ? {}
                : { unsafeTestingFaults: options.unsafeTestingFaults }),
            },
          }),
        );
      }
      this.#nodes.push({ id, up: true, replicas });
    }
  }

  traceTail(): string[] {
    return this.#trace.slice(-TRACE_LINES);
  }

  #log(line: string): void {
    this.#trace.push(`t${this.now} ${line}`);
    if (this.#trace.length > 4 * TRACE_LINES) {
      this.#trace = this.#trace.slice(-TRACE_LINES);
    }
  }

  run(): SimResult {
    const o = this.#options;
    for (; this.now < o.faultTicks; this.now++) {
      this.#injectFaults();
      this.#step();
    }
    this.#healAll();
    this.#checkLiveness();
    return {
      ticks: this.now,
      appliedPerGroup: Array.from(
        { length: o.groups },
        (_, g) => this.#checker.canonical(g).length,
      ),
      messagesDelivered: this.#delivered,
      readsAnswered: this.#readsAnswered,
      confChangesProposed: this.#confChanges,
    };
  }

  #step(): void {
    // A slow sync may run on while messages arrive, and a crash may beat it.
    for (const node of this.#nodes) {
      if (!node.up) continue;
      for (const r of node.replicas) {
        if (!r.syncPending) continue;
        if (this.#faults && this.#rng.chance(this.#options.slowSyncRate)) {
          continue;
        }
        this.#finishReady(r);
      }
    }
    this.#deliverDue();
    for (const node of this.#nodes) {
      if (!node.up) continue;
      for (const r of node.replicas) r.node.tick();
    }
    if (this.#faults) {
      this.#maybePropose();
      this.#maybeRead();
      this.#maybeChangeMembership();
    }
    this.#processReadies();
  }

  #injectFaults(): void {
    const o = this.#options;
    const rng = this.#rng;
    for (const node of this.#nodes) {
      if (node.up && rng.chance(o.crashRate)) {
        node.up = false;
        for (const r of node.replicas) {
          r.crashAndRestart();
          this.#checker.onRestart(r);
        }
        this.#log(`crash n${node.id}`);
      } else if (!node.up && rng.chance(o.restartRate)) {
        node.up = true;
        this.#log(`restart n${node.id}`);
      }
    }
    if (rng.chance(o.partitionRate)) {
      this.#sides = new Map(this.#nodes.map((n) => [n.id, rng.nextInt(2)]));
      this.#log(`partition ${JSON.stringify([...this.#sides])}`);
    } else if (this.#sides.size > 0 && rng.chance(o.healRate)) {
      this.#sides = new Map();
      this.#log("heal partition");
    }
    if (rng.chance(o.compactRate)) {
      const node = rng.pick(this.#nodes);
      const r = rng.pick(node.replicas);
      if (node.up && r.compact()) {
        this.#log(`compact n${node.id} g${r.group} at ${r.appliedIndex}`);
      }
    }
    if (rng.chance(o.transferRate)) {
      const group = rng.nextInt(o.groups);
      const leader = this.#leaderOf(group);
      const to = rng.pick(this.#nodes).id;
      if (leader !== null && to !== leader.id) {
        try {
          leader.node.transferLeadership(to);
          this.#log(`transfer g${group} ${leader.id} -> ${to}`);
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
    }
  }

  #connected(from: NodeId, to: NodeId): boolean {
    if (this.#sides.size === 0) return true;
    return this.#sides.get(from) === this.#sides.get(to);
  }

  #node(id: NodeId): SimNode {
    const node = this.#nodes[id - 1];
    if (node === undefined) throw new RangeError(`No node ${id}`);
    return node;
  }

  #send(group: number, m: Message): void {
    const o = this.#options;
    const rng = this.#rng;
    const dropped = !this.#connected(m.from, m.to) ||
      (this.#faults && rng.chance(o.dropRate));
    if (m.type === MessageType.Snap) {
      // The host reports a snapshot's fate once its transfer ends.
      this.#node(m.from).replicas[group]!.node.reportSnapshot(m.to, {
        failed: dropped,
      });
    }
    if (dropped) return;
    const copies = this.#faults && rng.chance(o.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.#inflight.push({
        deliverAt: this.now +
          (this.#faults ? rng.between(1, o.delayTicksMax) : 1),
        seq: this.#seq++,
        group,
        message: m,
      });
    }
  }

  #deliverDue(): void {
    const due = this.#inflight.filter((f) => f.deliverAt <= this.now);
    if (due.length === 0) return;
    this.#inflight = this.#inflight.filter((f) => f.deliverAt > this.now);
    due.sort((a, b) => a.deliverAt - b.deliverAt || a.seq - b.seq);
    for (const f of due) {
      const m = f.message;
      const target = this.#node(m.to);
      if (!target.up || !this.#connected(m.from, m.to)) continue;
      this.#log(`g${f.group} ${describeMessage(m)}`);
      target.replicas[f.group]!.deliver(m);
      this.#delivered++;
    }
  }

  #processReadies(): void {
    for (const node of this.#nodes) {
      if (!node.up) continue;
      for (const r of node.replicas) {
        const rd = r.startReady();
        if (rd === null) continue;
        for (const m of rd.earlyMessages) this.#send(r.group, m);
        if (this.#faults && this.#rng.chance(this.#options.slowSyncRate)) {
          continue;
        }
        this.#finishReady(r);
      }
    }
  }

  #finishReady(r: SimReplica): void {
    const effects = r.finishReady();
    const soft = effects.ready.softState;
    if (soft !== null) {
      this.#log(
        `n${r.id} g${r.group} ${soft.role} term ${r.node.status().hardState.term} leader ${soft.leader}`,
      );
    }
    this.#checker.onReady(r, effects);
    this.#readsAnswered += effects.ready.readStates.length;
    for (const m of effects.ready.messages) this.#send(r.group, m);
  }

  #leaderOf(group: number): SimReplica | null {
    let best: SimReplica | null = null;
    let bestTerm = -1;
    for (const node of this.#nodes) {
      if (!node.up) continue;
      const r = node.replicas[group]!;
      const st = r.node.status();
      if (st.softState.role === "leader" && st.hardState.term > bestTerm) {
        best = r;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  /** Proposes a unique payload on a random node, following one leader hint. */
  #propose(group: number, payload: string, firstTry: NodeId): boolean {
    let target = firstTry;
    for (let attempt = 0; attempt < 2; attempt++) {
      const node = this.#node(target);
      if (!node.up) return false;
      try {
        node.replicas[group]!.node.propose(encodePayload(payload));
        this.#log(`propose n${target} g${group} ${payload}`);
        return true;
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
        if (e.leaderHint === 0 || e.leaderHint === target) return false;
        target = e.leaderHint;
      }
    }
    return false;
  }

  #maybePropose(): void {
    const o = this.#options;
    for (let group = 0; group < o.groups; group++) {
      if (!this.#rng.chance(o.proposeRate)) continue;
      const target = this.#rng.pick(this.#nodes).id;
      this.#propose(group, `g${group}-p${this.#proposals++}`, target);
    }
  }

  #maybeRead(): void {
    const o = this.#options;
    for (let group = 0; group < o.groups; group++) {
      if (!this.#rng.chance(o.readRate)) continue;
      const node = this.#rng.pick(this.#nodes);
      if (!node.up) continue;
      const context = `g${group}-r${this.#reads++}`;
      try {
        node.replicas[group]!.node.readIndex(encodePayload(context));
        this.#checker.onReadIssued(group, context);
        this.#log(`read n${node.id} g${group} ${context}`);
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
      }
    }
  }

  /** One step of a membership walk: add a learner, promote it, or remove a voter. */
  #maybeChangeMembership(): void {
    const o = this.#options;
    for (let group = 0; group < o.groups; group++) {
      if (!this.#rng.chance(o.confChangeRate)) continue;
      const leader = this.#leaderOf(group);
      if (leader === null) continue;
      const { voters, learners } = leader.confState;
      const choices: ConfChange[] = [];
      for (const node of this.#nodes) {
        if (!voters.includes(node.id) && !learners.includes(node.id)) {
          choices.push({ type: "addLearner", nodeId: node.id });
        }
      }
      for (const id of learners) choices.push({ type: "addVoter", nodeId: id });
      // Keep at least three voters so that one crash does not stop the group.
      if (voters.length > 3 || (voters.length === 3 && o.nodes === 3)) {
        for (const id of voters) {
          choices.push({ type: "removeVoter", nodeId: id });
        }
      }
      if (choices.length === 0) continue;
      const cc = this.#rng.pick(choices);
      try {
        leader.node.proposeConfChange(cc);
        this.#confChanges++;
        this.#log(`conf change g${group} ${cc.type} ${cc.nodeId}`);
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
      }
    }
  }

  #healAll(): void {
    this.#faults = false;
    this.#sides = new Map();
    for (const node of this.#nodes) node.up = true;
    this.#log("heal all, faults off");
  }

  #checkLiveness(): void {
    const o = this.#options;
    const deadline = this.now + o.livenessTicks;
    const pending = new Map<number, Set<string>>();
    for (let g = 0; g < o.groups; g++) pending.set(g, new Set());
    for (; this.now < deadline; this.now++) {
      this.#step();
      let done = true;
      for (const [group, payloads] of pending) {
        // Only current members must apply; a removed node hears nothing more.
        const members = this.#leaderOf(group)?.confState;
        const replicas = this.#nodes.map((n) => n.replicas[group]!).filter((
          r,
        ) =>
          members === undefined || members.voters.includes(r.id) ||
          members.learners.includes(r.id)
        );
        const everywhere = [...payloads].some((p) =>
          replicas.every((r) => r.applied.includes(p))
        );
        if (everywhere) continue;
        done = false;
        // Re-propose now and then: an earlier try may have died with its leader.
        const leader = this.#leaderOf(group);
        if (leader !== null && this.now % o.electionTicks === 0) {
          const payload = `g${group}-live${this.#proposals++}`;
          if (this.#propose(group, payload, leader.id)) payloads.add(payload);
        }
      }
      if (done) return;
    }
    throw new SimViolationError(
      `Liveness: after healing, not every group committed a new proposal on all nodes within ${o.livenessTicks} ticks`,
    );
  }
}

function describeMessage(m: Message): string {
  const name = MESSAGE_NAMES[m.type] ?? `type${m.type}`;
  let s = `${name} ${m.from}->${m.to} term ${m.term}`;
  if (m.type === MessageType.App) {
    s +=
      ` prev ${m.index}@${m.logTerm} n ${m.entries.length} commit ${m.commit}`;
  } else if (m.type === MessageType.AppResp) {
    s += ` index ${m.index}${
      m.reject ? ` reject hint ${m.rejectHint}@${m.logTerm}` : ""
    }`;
  } else if (m.reject) s += " reject";
  return s;
}
