/**
 * The Discovery seam shared by every implementation, the checks on what a
 * broker announces about itself, and the listener fan-out that each
 * implementation uses to deliver events.
 */
export type BrokerStatus = "starting" | "online" | "draining";

/** What one broker tells the others about itself. */
export interface BrokerInfo {
  nodeId: number;
  /** Advertised Kafka host. */
  host: string;
  kafkaPort: number;
  raftHost: string;
  /** 0: the broker takes no Raft connections (one on its own). */
  raftPort: number;
  status: BrokerStatus;
  /** Optional, refreshed by update(). */
  load?: { partitions: number; leaders: number };
  startedAtMs: number;
}

export type DiscoveryEvent =
  | { type: "up"; broker: BrokerInfo }
  | { type: "down"; nodeId: number };

export type DiscoveryListener = (e: DiscoveryEvent) => void;

/**
 * Introduces brokers to each other. Not authoritative: the controller group
 * decides membership; discovery only says who might be out there.
 *
 * Every implementation reports changes of the calling broker too, so a
 * listener sees the same stream whichever broker it belongs to.
 */
export interface Discovery {
  register(self: BrokerInfo): Promise<void>;
  /** Status or load changes of the registered broker. */
  update(self: BrokerInfo): Promise<void>;
  deregister(): Promise<void>;
  /** The last known view (etcd: the cache, when etcd is unreachable). */
  list(): Promise<BrokerInfo[]>;
  /** Returns the unsubscribe function. */
  watch(listener: DiscoveryListener): () => void;
  /**
   * Atomically records `proposal` as the cluster's founding record if none
   * is recorded yet, and returns the recorded one (the caller's own proposal
   * if it won, another broker's if it lost). Never overwrites, so brokers
   * meeting an empty cluster found one cluster, not several. Does not need
   * register(); the record outlives every broker.
   */
  claimFounding(proposal: FoundingRecord): Promise<FoundingRecord>;
  close(): Promise<void>;
}

/** Who formed the cluster: its first voters, and the broker that bootstraps them. */
export interface FoundingRecord {
  voters: number[];
  /** One of `voters`. */
  founder: number;
}

/**
 * One voter of a static cluster, as config's `discovery.peers` yields it.
 * Declared here, like DiscoveryConfig, so discovery imports nothing of
 * src/config: main.ts hands it its slice as plain data.
 */
export interface StaticPeer {
  readonly nodeId: number;
  readonly host: string;
  /** The peer's raft_port. */
  readonly port: number;
}

/** The `discovery` slice of the config. */
export interface DiscoveryConfig {
  type: "memory" | "static" | "etcd";
  endpoints: readonly string[];
  username: string;
  password: string;
  timeoutMs: number;
  prefix: string;
  peers: readonly StaticPeer[];
}

export interface DiscoveryOptions {
  log?: (msg: string) => void;
  /** etcd only: lifetime of the registration when keep-alives stop. */
  leaseTtlSeconds?: number;
}

/** A Discovery used out of order: update before register, use after close. */
export class DiscoveryStateError extends Error {
  override name = "DiscoveryStateError";
}

/**
 * A Discovery that could not reach its backend within its timeout. Worth
 * retrying later, unlike the other errors.
 */
export class DiscoveryUnavailableError extends Error {
  override name = "DiscoveryUnavailableError";
}

const STATUSES: readonly BrokerStatus[] = ["starting", "online", "draining"];

function isPort(n: unknown, opts: { zeroAllowed: boolean }): boolean {
  return Number.isInteger(n) && (n as number) >= (opts.zeroAllowed ? 0 : 1) &&
    (n as number) <= 65535;
}

function isCount(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/**
 * What is wrong with a would-be BrokerInfo, or undefined when nothing is.
 * Kafka host and port may be ""/0: static discovery does not know them for
 * other brokers.
 */
export function brokerInfoProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "not an object";
  const b = value as Record<string, unknown>;
  const bad = (field: string) =>
    `bad ${field}: ${JSON.stringify(b[field]) ?? "undefined"}`;
  if (!Number.isInteger(b.nodeId) || (b.nodeId as number) < 1) {
    return bad("nodeId");
  }
  if (typeof b.host !== "string") return bad("host");
  if (!isPort(b.kafkaPort, { zeroAllowed: true })) return bad("kafkaPort");
  if (typeof b.raftHost !== "string" || b.raftHost === "") {
    return bad("raftHost");
  }
  if (!isPort(b.raftPort, { zeroAllowed: true })) return bad("raftPort");
  if (!STATUSES.includes(b.status as BrokerStatus)) return bad("status");
  if (b.load !== undefined) {
    const load = b.load as Record<string, unknown> | null;
    if (
      typeof load !== "object" || load === null ||
      !isCount(load.partitions) || !isCount(load.leaders)
    ) return bad("load");
  }
  if (!Number.isSafeInteger(b.startedAtMs) || (b.startedAtMs as number) < 0) {
    return bad("startedAtMs");
  }
  return undefined;
}

/**
 * What is wrong with a would-be FoundingRecord, or undefined when nothing is.
 * The founder bootstraps the voters' group, so it must be one of them.
 */
export function foundingProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "not an object";
  const { voters, founder } = value as Record<string, unknown>;
  if (
    !Array.isArray(voters) || voters.length === 0 ||
    !voters.every((v) => Number.isInteger(v) && v >= 1) ||
    new Set(voters).size !== voters.length
  ) {
    return `bad voters (want distinct node ids, at least one): ${
      JSON.stringify(voters) ?? "undefined"
    }`;
  }
  if (!voters.includes(founder)) {
    return `founder ${
      JSON.stringify(founder) ?? "undefined"
    } is not one of the voters ${JSON.stringify(voters)}`;
  }
  return undefined;
}

/** Throws a TypeError naming what is wrong with a founding proposal. */
export function checkFounding(proposal: FoundingRecord): void {
  const problem = foundingProblem(proposal);
  if (problem !== undefined) {
    throw new TypeError(`Cannot claim founding: ${problem}`);
  }
}

/** A copy holding only FoundingRecord's fields, as copyBrokerInfo does. */
export function copyFounding(record: FoundingRecord): FoundingRecord {
  return { voters: [...record.voters], founder: record.founder };
}

/** Throws a TypeError naming the bad field of a broker's own info. */
export function checkBrokerInfo(self: BrokerInfo): void {
  const problem = brokerInfoProblem(self);
  if (problem !== undefined) {
    throw new TypeError(`Cannot announce broker: ${problem}`);
  }
}

/**
 * A copy holding only BrokerInfo's fields, which callers cannot mutate behind
 * our back (nor we theirs); also drops extra fields read from etcd.
 */
export function copyBrokerInfo(b: BrokerInfo): BrokerInfo {
  const copy: BrokerInfo = {
    nodeId: b.nodeId,
    host: b.host,
    kafkaPort: b.kafkaPort,
    raftHost: b.raftHost,
    raftPort: b.raftPort,
    status: b.status,
    startedAtMs: b.startedAtMs,
  };
  if (b.load !== undefined) {
    copy.load = { partitions: b.load.partitions, leaders: b.load.leaders };
  }
  return copy;
}

/**
 * The listeners of one Discovery. A throwing listener is logged and does not
 * keep the event from the others, nor fail the change that caused it.
 */
export class Listeners {
  #listeners = new Set<DiscoveryListener>();
  #log: (msg: string) => void;

  constructor(log: (msg: string) => void) {
    this.#log = log;
  }

  add(listener: DiscoveryListener): () => void {
    // Wrapped so that one function subscribed twice gets two subscriptions.
    const entry: DiscoveryListener = (e) => listener(e);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(e: DiscoveryEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(
          e.type === "up" ? { ...e, broker: copyBrokerInfo(e.broker) } : e,
        );
      } catch (err) {
        this.#log(`Discovery listener failed on ${e.type} event: ${err}`);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
