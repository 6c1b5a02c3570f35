/**
 * The broker's Prometheus metrics. Request, latency and fsync series are
 * pushed from the paths they measure through children resolved once
 * (per API key, per acks value); everything that is state anyway
 * (partition traffic and offsets, Raft positions, connections, group lag,
 * process figures) is read at scrape time by collected families, so it
 * costs nothing between scrapes.
 *
 * Raft series are aggregated over the groups of this broker by default:
 * with thousands of partitions a series per group would swamp the page.
 * `admin.per_partition_metrics` adds them per partition group.
 */
import process from "node:process";
import { ApiKey } from "../protocol/mod.ts";
import type { CleanResult } from "../storage/mod.ts";
import {
  type CounterChild,
  type GaugeChild,
  type HistogramChild,
  type PushedFamily,
  Registry,
} from "../util/mod.ts";
import type { ClusterNode } from "./cluster/node.ts";
import type { GroupCoordinator } from "./groups/coordinator.ts";
import type { TxnCoordinator } from "./transactions/txn_coordinator.ts";
import type { PartitionManager } from "./partitions.ts";
import { groupOffsets } from "./status.ts";

/** How often the event loop's delay is sampled. */
const EVENT_LOOP_PROBE_MS = 500;

const API_NAMES = new Map<number, string>(
  Object.entries(ApiKey).map(([name, key]) => [key, name]),
);

/** Label value of an error code, with "-1" for a request that threw. */
type ErrorCounters = PushedFamily<CounterChild>;

/** Per API key: children looked up once, then only incremented. */
interface ApiSeries {
  readonly requests: CounterChild;
  readonly latency: HistogramChild;
  readonly name: string;
}

/**
 * Counts the non-zero `errorCode` fields of a response body, descending
 * into nested objects and arrays but not into byte arrays (record sets),
 * which are the only large parts of a response.
 */
function eachErrorCode(body: unknown, found: (code: number) => void): void {
  if (Array.isArray(body)) {
    for (const item of body) eachErrorCode(item, found);
    return;
  }
  if (
    body === null || typeof body !== "object" || ArrayBuffer.isView(body)
  ) return;
  for (const [key, value] of Object.entries(body)) {
    if (key === "errorCode") {
      if (typeof value === "number" && value !== 0) found(value);
    } else if (typeof value === "object" && value !== null) {
      eachErrorCode(value, found);
    }
  }
}

export class BrokerMetrics {
  readonly registry: Registry = new Registry();
  readonly #apis = new Map<number, ApiSeries>();
  readonly #errors: ErrorCounters;
  readonly #produceAck = new Map<number, HistogramChild>();
  readonly #fsync: HistogramChild;
  readonly #eventLoopLag: HistogramChild;
  #eventLoopLagLast = 0;
  readonly #cleaner: {
    readonly cleanings: CounterChild;
    readonly readBytes: CounterChild;
    readonly writtenBytes: CounterChild;
    readonly removedBytes: CounterChild;
    readonly seconds: CounterChild;
    readonly lastRatio: GaugeChild;
    readonly lastRun: GaugeChild;
  };
  #probe: ReturnType<typeof setInterval> | undefined;

  constructor() {
    const r = this.registry;
    const requests = r.counter(
      "raftq_kafka_requests_total",
      "Kafka requests served, by API",
      ["api"],
    );
    const latency = r.histogram(
      "raftq_kafka_request_seconds",
      "Time from a request's decoding to its response, by API",
      { labelNames: ["api"] },
    );
    this.#errors = r.counter(
      "raftq_kafka_errors_total",
      "Non-zero error codes in Kafka responses (code -1: the request failed and its connection was closed), by API and code",
      ["api", "code"],
    );
    for (const [key, name] of API_NAMES) {
      this.#apis.set(key, {
        requests: requests.labels(name),
        latency: latency.labels(name),
        name,
      });
    }
    const ack = r.histogram(
      "raftq_produce_ack_seconds",
      "Time from a Produce request to its answer, by acks",
      { labelNames: ["acks"] },
    );
    for (const acks of [-1, 0, 1]) {
      this.#produceAck.set(acks, ack.labels(String(acks)));
    }
    this.#fsync = r.histogram(
      "raftq_wal_fsync_seconds",
      "Duration of the Raft WAL's fdatasync calls (one per loop turn, for all groups)",
    ).labels();
    this.#eventLoopLag = r.histogram(
      "raftq_event_loop_lag_seconds",
      `How late a timer set for ${EVENT_LOOP_PROBE_MS} ms fires`,
    ).labels();
    this.#cleaner = {
      cleanings: r.counter(
        "raftq_cleaner_cleanings_total",
        "Cleanings of a compacted partition's closed segments",
      ).labels(),
      readBytes: r.counter(
        "raftq_cleaner_read_bytes_total",
        "Bytes the log cleaner read (the key map pass and the copy pass)",
      ).labels(),
      writtenBytes: r.counter(
        "raftq_cleaner_written_bytes_total",
        "Bytes the log cleaner wrote into cleaned segments",
      ).labels(),
      removedBytes: r.counter(
        "raftq_cleaner_removed_bytes_total",
        "Bytes of superseded records and expired tombstones the cleaner removed",
      ).labels(),
      seconds: r.counter(
        "raftq_cleaner_seconds_total",
        "Time spent cleaning, pauses for the I/O limit included",
      ).labels(),
      lastRatio: r.gauge(
        "raftq_cleaner_last_size_ratio",
        "Size of the segments the last cleaning wrote over the size it read them at",
      ).labels(),
      lastRun: r.gauge(
        "raftq_cleaner_last_run_timestamp_seconds",
        "When the last cleaning ended, in seconds since the epoch",
      ).labels(),
    };
    r.collected("raftq_event_loop_lag_last_seconds", {
      help: "The latest event loop lag sample",
      type: "gauge",
      collect: (emit) => emit([], this.#eventLoopLagLast),
    });
  }

  /** Records one served request: `reply` is its body, null when it threw. */
  request(apiKey: number, opts: { seconds: number; reply: unknown }): void {
    const api = this.#apis.get(apiKey);
    if (api === undefined) return;
    api.requests.inc();
    api.latency.observe(opts.seconds);
    if (opts.reply === null) {
      this.#errors.labels(api.name, "-1").inc();
      return;
    }
    eachErrorCode(
      opts.reply,
      (code) => this.#errors.labels(api.name, String(code)).inc(),
    );
  }

  produceAck(acks: number, seconds: number): void {
    this.#produceAck.get(acks)?.observe(seconds);
  }

  fsync(seconds: number): void {
    this.#fsync.observe(seconds);
  }

  cleaned(result: CleanResult): void {
    const c = this.#cleaner;
    c.cleanings.inc();
    c.readBytes.inc(result.readBytes);
    c.writtenBytes.inc(result.writtenBytes);
    c.removedBytes.inc(Math.max(0, result.sourceBytes - result.targetBytes));
    c.seconds.inc(result.durationMs / 1000);
    c.lastRatio.set(
      result.sourceBytes === 0 ? 1 : result.targetBytes / result.sourceBytes,
    );
    c.lastRun.set(Date.now() / 1000);
  }

  /** Samples the event loop's delay until close(). */
  startProbes(): void {
    let expected = performance.now() + EVENT_LOOP_PROBE_MS;
    const probe = setInterval(() => {
      const now = performance.now();
      const lag = Math.max(0, now - expected) / 1000;
      this.#eventLoopLagLast = lag;
      this.#eventLoopLag.observe(lag);
      expected = now + EVENT_LOOP_PROBE_MS;
    }, EVENT_LOOP_PROBE_MS);
    // A broker ends by stopping; its metrics must not keep the process up.
    Deno.unrefTimer(probe);
    this.#probe = probe;
  }

  close(): void {
    clearInterval(this.#probe);
  }

  /** Registers the families read from broker state at each scrape. */
  collectFrom(opts: {
    node: ClusterNode;
    partitions: PartitionManager;
    coordinator: GroupCoordinator;
    transactions: TxnCoordinator;
    connections: { readonly connections: number; readonly accepted: number };
    perPartitionRaft: boolean;
  }): void {
    const r = this.registry;
    const { node } = opts;
    r.collected("raftq_connections", {
      help: "Open Kafka client connections",
      type: "gauge",
      collect: (emit) => emit([], opts.connections.connections),
    });
    r.collected("raftq_connections_accepted_total", {
      help: "Kafka client connections accepted",
      type: "counter",
      collect: (emit) => emit([], opts.connections.accepted),
    });
    const replicas = () =>
      node.replicas().map(({ sm, leading }) => ({
        p: sm.partition,
        leading,
        labels: [sm.partition.topic, String(sm.partition.index)],
      }));
    const perReplica = (
      name: string,
      help: string,
      type: "counter" | "gauge",
      read: (r: ReturnType<typeof replicas>[number]) => number,
    ) =>
      r.collected(name, {
        help,
        type,
        labelNames: ["topic", "partition"],
        collect: (emit) => {
          for (const x of replicas()) emit(x.labels, read(x));
        },
      });
    perReplica(
      "raftq_partition_bytes_in_total",
      "Record set bytes produced to the partition while this broker led it",
      "counter",
      (x) => x.p.traffic.bytesIn,
    );
    perReplica(
      "raftq_partition_records_in_total",
      "Records produced to the partition while this broker led it",
      "counter",
      (x) => x.p.traffic.recordsIn,
    );
    perReplica(
      "raftq_partition_bytes_out_total",
      "Record set bytes fetched by clients from this replica",
      "counter",
      (x) => x.p.traffic.bytesOut,
    );
    perReplica(
      "raftq_partition_records_out_total",
      "Records fetched by clients from this replica",
      "counter",
      (x) => x.p.traffic.recordsOut,
    );
    perReplica(
      "raftq_partition_log_bytes",
      "Bytes of the replica's segment files",
      "gauge",
      (x) => x.p.log.sizeBytes,
    );
    perReplica(
      "raftq_partition_log_start_offset",
      "First offset the replica holds",
      "gauge",
      (x) => Number(x.p.log.logStartOffset),
    );
    perReplica(
      "raftq_partition_log_end_offset",
      "Offset the next record appended to the replica gets",
      "gauge",
      (x) => Number(x.p.log.logEndOffset),
    );
    perReplica(
      "raftq_partition_high_watermark",
      "Offsets below this are committed and visible to consumers",
      "gauge",
      (x) => Number(x.p.highWatermark),
    );
    perReplica(
      "raftq_partition_leader",
      "1 when this broker leads the partition, else 0",
      "gauge",
      (x) => x.leading ? 1 : 0,
    );
    this.#collectRaft(node, opts.perPartitionRaft);
    r.collected("raftq_group_lag", {
      help:
        "High watermark minus committed offset, for the groups this broker coordinates and the partitions it holds",
      type: "gauge",
      labelNames: ["group", "topic", "partition"],
      collect: (emit) => {
        for (const g of opts.coordinator.list([])) {
          const offsets = groupOffsets(
            opts.coordinator,
            opts.partitions,
            g.groupId,
          );
          for (const o of offsets) {
            if (o.lag === null) continue;
            emit([g.groupId, o.topic, String(o.partition)], o.lag);
          }
        }
      },
    });
    const txns = () => opts.transactions.stats();
    r.collected("raftq_transactional_ids", {
      help: "Transactional ids this broker coordinates",
      type: "gauge",
      collect: (emit) => emit([], txns().ids),
    });
    r.collected("raftq_transactions_open", {
      help:
        "Transactions begun and not yet complete on this broker's coordinators (at most transactions.max_open)",
      type: "gauge",
      collect: (emit) => emit([], txns().open),
    });
    r.collected("raftq_transactions_ended_total", {
      help:
        "Transactions this broker's coordinators completed, by outcome (aborts include timeouts and fencing)",
      type: "counter",
      labelNames: ["result"],
      collect: (emit) => {
        for (const [result, n] of Object.entries(txns().ended)) {
          emit([result], n);
        }
      },
    });
    r.collected("raftq_process_cpu_seconds_total", {
      help: "CPU time of the broker process, user plus system",
      type: "counter",
      collect: (emit) => {
        const { user, system } = process.cpuUsage();
        emit([], (user + system) / 1e6);
      },
    });
    r.collected("raftq_process_memory_bytes", {
      help: "Memory of the broker process, by kind",
      type: "gauge",
      labelNames: ["kind"],
      collect: (emit) => {
        const m = Deno.memoryUsage();
        emit(["rss"], m.rss);
        emit(["heap_total"], m.heapTotal);
        emit(["heap_used"], m.heapUsed);
        emit(["external"], m.external);
      },
    });
  }

  #collectRaft(node: ClusterNode, perPartition: boolean): void {
    const r = this.registry;
    r.collected("raftq_raft_groups", {
      help: "Raft groups this broker runs, by its role in them",
      type: "gauge",
      labelNames: ["role"],
      collect: (emit) => {
        let leader = 0;
        let other = 0;
        for (const g of node.raftGroups()) {
          if (g.leader === node.nodeId) leader++;
          else other++;
        }
        emit(["leader"], leader);
        emit(["follower"], other);
      },
    });
    r.collected("raftq_raft_leader_changes_total", {
      help: "Leadership changes this broker saw, over all its groups",
      type: "counter",
      collect: (emit) => emit([], node.leaderChanges),
    });
    r.collected("raftq_raft_snapshots_total", {
      help: "Snapshots taken or installed, over the groups running since start",
      type: "counter",
      collect: (emit) => {
        let n = 0;
        for (const g of node.raftGroups()) n += g.snapshots;
        emit([], n);
      },
    });
    r.collected("raftq_raft_follower_lag_entries_max", {
      help:
        "Over the groups this broker leads, the most entries a replica lacks",
      type: "gauge",
      collect: (emit) => {
        let max = 0;
        for (const g of node.raftGroups()) {
          max = Math.max(max, g.followerLagMax);
        }
        emit([], max);
      },
    });
    r.collected("raftq_raft_unapplied_entries_max", {
      help: "Over this broker's groups, the most committed entries not applied",
      type: "gauge",
      collect: (emit) => {
        let max = 0;
        for (const g of node.raftGroups()) {
          max = Math.max(max, g.commitIndex - g.applied);
        }
        emit([], max);
      },
    });
    if (!perPartition) return;
    const labelNames = ["topic", "partition"];
    const perGroup = (
      name: string,
      help: string,
      read: (g: ReturnType<ClusterNode["raftGroups"]>[number]) => number,
    ) =>
      r.collected(name, {
        help,
        type: "gauge",
        labelNames,
        collect: (emit) => {
          for (const g of node.raftGroups()) {
            // The controller group is labelled as no topic's partition -1.
            emit([g.topic ?? "", String(g.partition)], read(g));
          }
        },
      });
    perGroup("raftq_raft_group_term", "Raft term of the group", (g) => g.term);
    perGroup(
      "raftq_raft_group_commit_index",
      "Commit index of the group",
      (g) => g.commitIndex,
    );
    perGroup(
      "raftq_raft_group_applied_index",
      "Applied index of the group on this broker",
      (g) => g.applied,
    );
    perGroup(
      "raftq_raft_group_follower_lag_entries",
      "On the leader, the most entries a replica lacks",
      (g) => g.followerLagMax,
    );
    perGroup(
      "raftq_raft_group_snapshots",
      "Snapshots of the group since it started here",
      (g) => g.snapshots,
    );
  }
}
