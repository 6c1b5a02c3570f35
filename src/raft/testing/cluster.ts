import {
  MemoryStorage,
  type Message,
  MessageType,
  type NodeId,
  type RaftOptions,
} from "../core/mod.ts";
import { SeededRng } from "./rng.ts";
import { SimReplica } from "./replica.ts";

export interface TestClusterOptions {
  voters: NodeId[];
  learners?: NodeId[];
  /** Overrides of the defaults (electionTicks 10, heartbeatTicks 1, ...). */
  raft?: Partial<Omit<RaftOptions, "id" | "rng" | "applied">>;
  seed?: number;
}

/**
 * A hand-driven cluster of one group for scenario tests: nothing happens
 * unless the test ticks, delivers or stabilizes. Messages are queued and
 * delivered in order; a test can cut links or drop by predicate.
 */
export class TestCluster {
  readonly replicas = new Map<NodeId, SimReplica>();
  /** Sent, not yet delivered. */
  queue: Message[] = [];
  /** Returns true to drop a message instead of delivering it. */
  dropIf: (m: Message) => boolean = () => false;
  readonly #cut = new Set<NodeId>();
  readonly #rng: SeededRng;
  readonly #raft: Omit<RaftOptions, "id" | "rng" | "applied">;

  constructor(options: TestClusterOptions) {
    this.#rng = new SeededRng(options.seed ?? 1);
    this.#raft = {
      electionTicks: 10,
      heartbeatTicks: 1,
      checkQuorum: false,
      preVote: false,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      ...options.raft,
    };
    const confState = {
      voters: options.voters,
      learners: options.learners ?? [],
    };
    for (const id of [...confState.voters, ...confState.learners]) {
      this.addReplica(id, new MemoryStorage(confState));
    }
  }

  /** A replica with the given storage (an empty one joins as a blank new node). */
  addReplica(id: NodeId, storage = new MemoryStorage()): SimReplica {
    const replica = new SimReplica(storage, {
      group: 0,
      raft: { ...this.#raft, id, rng: this.#rng.fork() },
    });
    this.replicas.set(id, replica);
    return replica;
  }

  get(id: NodeId): SimReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new RangeError(`No replica ${id}`);
    return r;
  }

  /** Cuts every link of `id` (messages to or from it are dropped). */
  isolate(id: NodeId): void {
    this.#cut.add(id);
  }

  heal(): void {
    this.#cut.clear();
    this.dropIf = () => false;
  }

  tick(id: NodeId, count = 1): void {
    for (let i = 0; i < count; i++) this.get(id).node.tick();
  }

  /** Runs every replica's Ready once, queueing its messages. */
  processReadies(): void {
    for (const id of [...this.replicas.keys()].sort((a, b) => a - b)) {
      const effects = this.get(id).processReady();
      if (effects !== null) {
        this.queue.push(
          ...effects.ready.earlyMessages,
          ...effects.ready.messages,
        );
      }
    }
  }

  /** Delivers (or drops) what is queued now; returns how many were handled. */
  deliverQueued(): number {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      const dropped = this.#cut.has(m.from) || this.#cut.has(m.to) ||
        this.dropIf(m);
      const target = this.replicas.get(m.to);
      if (m.type === MessageType.Snap) {
        this.replicas.get(m.from)?.node.reportSnapshot(m.to, {
          failed: dropped || target === undefined,
        });
      }
      if (!dropped && target !== undefined) target.deliver(m);
    }
    return batch.length;
  }

  /** Processes Readies and delivers until nothing moves (bounded). */
  stabilize(maxRounds = 200): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      if (this.deliverQueued() === 0) {
        this.processReadies();
        if (this.queue.length === 0) return;
      }
    }
    throw new Error(`TestCluster did not stabilize in ${maxRounds} rounds`);
  }

  /** Makes `id` campaign and runs the election to the end. */
  elect(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  /** The replica that believes it leads in the highest term; 0 if none. */
  leader(): NodeId {
    let best = 0;
    let bestTerm = -1;
    for (const [id, r] of this.replicas) {
      const st = r.node.status();
      if (st.softState.role === "leader" && st.hardState.term > bestTerm) {
        best = id;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }
}
