/**
 * The catalogue of Kafka configs raftq knows: every topic config Kafka
 * documents, with its type, range and default, whether raftq acts on it,
 * and the broker config it falls back to; and the broker configs, taken
 * from raftq's own config file under Kafka's names. DescribeConfigs,
 * AlterConfigs and CreateTopics all answer from this one table.
 */
import {
  Compression,
  type CompressionCode,
  ErrorCode,
} from "../protocol/mod.ts";
import type { Config } from "../config/mod.ts";
import { TopicError } from "./topics.ts";
import type { ConfigOp } from "./controller/mod.ts";

/** Kafka's ConfigType, as DescribeConfigs v3+ reports it. */
export const ConfigType = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
} as const;

/** Kafka's ConfigSource, as DescribeConfigs v1+ reports it. */
export const ConfigSource = {
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

/** Kafka's ConfigResource types that raftq serves. */
export const ResourceType = { TOPIC: 2, BROKER: 4 } as const;

/** Why `value` is refused, or null when it is fine. */
type Check = (value: string) => string | null;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const LONG_MAX = "9223372036854775807";

function integral(min: bigint, max: bigint, what: string): Check {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) return `not ${what}`;
    const n = BigInt(value.trim());
    if (n < min || n > max) return `out of range [${min}, ${max}]`;
    return null;
  };
}

const int = (min = INT32_MIN, max = INT32_MAX) =>
  integral(BigInt(min), BigInt(max), "an integer");
const long = (min: number | bigint) =>
  integral(BigInt(min), BigInt(LONG_MAX), "an integer");

const bool: Check = (value) =>
  /^(true|false)$/i.test(value.trim()) ? null : "not true or false";

function oneOf(...allowed: string[]): Check {
  return (value) =>
    allowed.includes(value.trim()) ? null : `not one of ${allowed.join(", ")}`;
}

/** A comma-separated list whose items each pass `item`. */
function listOf(item: Check, opts: { nonEmpty: boolean }): Check {
  return (value) => {
    const items = splitList(value);
    if (opts.nonEmpty && items.length === 0) return "an empty list";
    for (const i of items) {
      const why = item(i);
      if (why !== null) return `item "${i}" is ${why}`;
    }
    return null;
  };
}

const ratio: Check = (value) => {
  const n = Number(value.trim());
  return value.trim() !== "" && n >= 0 && n <= 1 ? null : "not in [0, 1]";
};

/** "*" or partition:broker pairs, as Kafka's throttled-replica lists. */
const throttledReplicas: Check = (value) =>
  value.trim() === "*" ||
    splitList(value).every((i) => /^\d+:\d+$/.test(i))
    ? null
    : 'not "*" or a list of partition:broker pairs';

const formatVersion: Check = (value) =>
  /^\d+\.\d+(\.\d+)?(-IV\d+)?$/.test(value.trim())
    ? null
    : "not a Kafka version such as 3.0-IV1";

export function splitList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

interface TopicConfigDef {
  readonly name: string;
  readonly type: number;
  /** Kafka's default, used when neither the topic nor a broker config sets it. */
  readonly kafkaDefault: string;
  readonly check: Check;
  /** The broker config a topic without its own value falls back to. */
  readonly synonym?: string;
  /** True when raftq changes behaviour by it; others are kept and reported. */
  readonly acts: boolean;
  readonly doc: string;
}

function def(
  name: string,
  type: number,
  kafkaDefault: string,
  check: Check,
  opts: { synonym?: string; acts?: boolean; doc: string },
): TopicConfigDef {
  return {
    name,
    type,
    kafkaDefault,
    check,
    acts: opts.acts ?? false,
    doc: opts.doc,
    ...(opts.synonym === undefined ? {} : { synonym: opts.synonym }),
  };
}

const T = ConfigType;

export const TOPIC_CONFIGS: readonly TopicConfigDef[] = [
  def(
    "cleanup.policy",
    T.LIST,
    "delete",
    listOf(oneOf("delete", "compact"), { nonEmpty: true }),
    {
      synonym: "log.cleanup.policy",
      acts: true,
      doc:
        "delete: old segments go by retention; compact: closed segments keep the last record per key (records must have a key); both: compacted and deleted by retention",
    },
  ),
  def(
    "compression.type",
    T.STRING,
    "producer",
    oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
    {
      synonym: "compression.type",
      acts: true,
      doc:
        "Codec batches are stored with: the leader rewrites every batch in another codec; producer keeps each as sent",
    },
  ),
  def(
    "compression.gzip.level",
    T.INT,
    "-1",
    (v) => v.trim() === "-1" ? null : int(1, 9)(v),
    {
      synonym: "compression.gzip.level",
      acts: true,
      doc: "Level for broker-side gzip: 1-9, or -1 for the codec's default",
    },
  ),
  def("compression.lz4.level", T.INT, "9", int(1, 17), {
    synonym: "compression.lz4.level",
    doc: "Level for broker-side lz4 (raftq's lz4 encoder has one level)",
  }),
  def("compression.zstd.level", T.INT, "3", int(-131072, 22), {
    synonym: "compression.zstd.level",
    acts: true,
    doc: "Level for broker-side zstd",
  }),
  def("delete.retention.ms", T.LONG, "86400000", long(0), {
    synonym: "log.cleaner.delete.retention.ms",
    acts: true,
    doc: "How long a compacted topic keeps tombstones",
  }),
  def("file.delete.delay.ms", T.LONG, "60000", long(0), {
    synonym: "log.segment.delete.delay.ms",
    doc: "Wait before a deleted segment's file is removed",
  }),
  def("flush.messages", T.LONG, LONG_MAX, long(1), {
    synonym: "log.flush.interval.messages",
    doc:
      "Records between forced flushes (raftq syncs its Raft log before acknowledging)",
  }),
  def("flush.ms", T.LONG, LONG_MAX, long(0), {
    synonym: "log.flush.interval.ms",
    doc:
      "Time between forced flushes (raftq syncs its Raft log before acknowledging)",
  }),
  def(
    "follower.replication.throttled.replicas",
    T.LIST,
    "",
    throttledReplicas,
    { doc: "Replicas whose follower-side replication is throttled" },
  ),
  def("index.interval.bytes", T.INT, "4096", int(0), {
    synonym: "log.index.interval.bytes",
    acts: true,
    doc: "Log bytes between two offset index entries",
  }),
  def(
    "leader.replication.throttled.replicas",
    T.LIST,
    "",
    throttledReplicas,
    { doc: "Replicas whose leader-side replication is throttled" },
  ),
  def("local.retention.bytes", T.LONG, "-2", long(-2), {
    synonym: "log.local.retention.bytes",
    doc: "Local bytes kept with tiered storage (-2: retention.bytes)",
  }),
  def("local.retention.ms", T.LONG, "-2", long(-2), {
    synonym: "log.local.retention.ms",
    doc: "Local age kept with tiered storage (-2: retention.ms)",
  }),
  def("max.compaction.lag.ms", T.LONG, LONG_MAX, long(1), {
    synonym: "log.cleaner.max.compaction.lag.ms",
    acts: true,
    doc: "Longest a record stays uncompacted",
  }),
  // A record set travels between brokers as one Raft message, and the Raft
  // transport's frames stop at 64 MiB: half of that leaves room to spare.
  def("max.message.bytes", T.INT, "1048588", int(0, 32 * 1024 * 1024), {
    synonym: "message.max.bytes",
    acts: true,
    doc: "Largest record set a produce may write to the topic (at most 32 MiB)",
  }),
  def("message.downconversion.enable", T.BOOLEAN, "true", bool, {
    synonym: "log.message.downconversion.enable",
    doc:
      "Down-convert batches for old fetchers (raftq serves record batch v2 only)",
  }),
  def("message.format.version", T.STRING, "3.0-IV1", formatVersion, {
    synonym: "log.message.format.version",
    doc: "Record format version (raftq writes v2 batches)",
  }),
  def("message.timestamp.after.max.ms", T.LONG, LONG_MAX, long(0), {
    synonym: "log.message.timestamp.after.max.ms",
    doc: "How far ahead of the broker's clock a CreateTime may be",
  }),
  def("message.timestamp.before.max.ms", T.LONG, LONG_MAX, long(0), {
    synonym: "log.message.timestamp.before.max.ms",
    doc: "How far behind the broker's clock a CreateTime may be",
  }),
  def("message.timestamp.difference.max.ms", T.LONG, LONG_MAX, long(0), {
    synonym: "log.message.timestamp.difference.max.ms",
    doc: "Older form of message.timestamp.before.max.ms",
  }),
  def(
    "message.timestamp.type",
    T.STRING,
    "CreateTime",
    oneOf("CreateTime", "LogAppendTime"),
    {
      synonym: "log.message.timestamp.type",
      acts: true,
      doc:
        "CreateTime keeps the producer's timestamps; LogAppendTime is the broker's clock",
    },
  ),
  def("min.cleanable.dirty.ratio", T.DOUBLE, "0.5", ratio, {
    synonym: "log.cleaner.min.cleanable.ratio",
    acts: true,
    doc: "Share of uncompacted log that makes a topic due for compaction",
  }),
  def("min.compaction.lag.ms", T.LONG, "0", long(0), {
    synonym: "log.cleaner.min.compaction.lag.ms",
    acts: true,
    doc: "Shortest time a record stays uncompacted",
  }),
  def("min.insync.replicas", T.INT, "1", int(1), {
    synonym: "min.insync.replicas",
    acts: true,
    doc:
      "Replicas that must hold an acks=all write: a Raft commit needs a majority; a larger value waits for that many voters, and a write with fewer replicas in sync is refused with NOT_ENOUGH_REPLICAS",
  }),
  def("preallocate", T.BOOLEAN, "false", bool, {
    synonym: "log.preallocate",
    doc: "Preallocate segment files",
  }),
  def("remote.log.copy.disable", T.BOOLEAN, "false", bool, {
    doc: "Stop copying segments to tiered storage",
  }),
  def("remote.log.delete.on.disable", T.BOOLEAN, "false", bool, {
    doc: "Delete tiered segments when tiered storage is turned off",
  }),
  def("remote.storage.enable", T.BOOLEAN, "false", oneOf("false"), {
    doc: "Tiered storage; raftq has none, so only false is accepted",
  }),
  def("retention.bytes", T.LONG, "-1", long(-1), {
    synonym: "log.retention.bytes",
    acts: true,
    doc: "Bytes a partition keeps before its oldest segments go (-1: no limit)",
  }),
  def("retention.ms", T.LONG, "604800000", long(-1), {
    synonym: "log.retention.ms",
    acts: true,
    doc: "Age after which a segment goes (-1: kept forever)",
  }),
  def("segment.bytes", T.INT, "1073741824", int(14), {
    synonym: "log.segment.bytes",
    acts: true,
    doc: "A segment rolls over at this size",
  }),
  def("segment.index.bytes", T.INT, "10485760", int(4), {
    synonym: "log.index.size.max.bytes",
    doc: "Size of a segment's offset index file",
  }),
  def("segment.jitter.ms", T.LONG, "0", long(0), {
    synonym: "log.roll.jitter.ms",
    doc: "Random spread subtracted from segment.ms",
  }),
  def("segment.ms", T.LONG, "604800000", long(1), {
    synonym: "log.roll.ms",
    acts: true,
    doc: "A segment rolls over at this age",
  }),
  def("unclean.leader.election.enable", T.BOOLEAN, "false", oneOf("false"), {
    synonym: "unclean.leader.election.enable",
    acts: true,
    doc:
      "Raft never elects a replica that lacks committed records, so only false is accepted",
  }),
];

const TOPIC_CONFIG_BY_NAME = new Map(TOPIC_CONFIGS.map((d) => [d.name, d]));

function invalid(message: string): TopicError {
  return new TopicError(ErrorCode.INVALID_CONFIG, message);
}

/**
 * Throws TopicError(INVALID_CONFIG) naming the first unknown key or bad
 * value; `replicationFactor` bounds min.insync.replicas.
 */
export function validateTopicConfigs(
  configs: Readonly<Record<string, string>>,
  opts: { replicationFactor: number },
): void {
  for (const [key, value] of Object.entries(configs)) {
    const d = TOPIC_CONFIG_BY_NAME.get(key);
    if (d === undefined) {
      throw invalid(`Unknown topic config "${key}"`);
    }
    const why = d.check(value);
    if (why !== null) {
      throw invalid(`Topic config ${key}="${value}" is invalid: ${why}`);
    }
  }
  // Kafka takes it and fails every acks=all write; refusing it up front
  // names the mistake.
  const minInsync = configs["min.insync.replicas"];
  if (
    minInsync !== undefined && Number(minInsync) > opts.replicationFactor
  ) {
    throw invalid(
      `Topic config min.insync.replicas="${minInsync}" is invalid: it exceeds the replication factor ${opts.replicationFactor}, so no acks=all write could succeed`,
    );
  }
}

/** One config as DescribeConfigs reports it. */
export interface DescribedConfig {
  readonly name: string;
  readonly value: string | null;
  readonly source: number;
  readonly readOnly: boolean;
  readonly sensitive: boolean;
  readonly type: number;
  readonly doc: string;
  /** Where the value could come from, the one in force first. */
  readonly synonyms: readonly { name: string; value: string; source: number }[];
}

interface BrokerConfigEntry {
  readonly name: string;
  readonly value: string;
  readonly source: number;
  readonly type: number;
  readonly doc: string;
}

/**
 * Broker configs altered at run time (Kafka's dynamic broker configs),
 * under Kafka's names; kept in the controller state.
 */
export interface DynamicBrokerConfigs {
  /** This broker's own (DYNAMIC_BROKER_CONFIG). */
  readonly broker: Readonly<Record<string, string>>;
  /** Every broker's default (DYNAMIC_DEFAULT_BROKER_CONFIG). */
  readonly cluster: Readonly<Record<string, string>>;
}

export const NO_DYNAMIC_BROKER_CONFIGS: DynamicBrokerConfigs = {
  broker: {},
  cluster: {},
};

/**
 * The broker configs that can change at run time: the broker defaults of
 * topic configs, by broker config name.
 */
const DYNAMIC_BROKER_CONFIGS = new Map(
  TOPIC_CONFIGS.flatMap((d) =>
    d.synonym === undefined ? [] : [[d.synonym, d] as const]
  ),
);

/**
 * Throws TopicError(INVALID_CONFIG) naming the first broker config in
 * `configs` that cannot change at run time, or whose value is bad.
 */
export function validateBrokerConfigs(
  configs: Readonly<Record<string, string>>,
): void {
  for (const [key, value] of Object.entries(configs)) {
    const d = DYNAMIC_BROKER_CONFIGS.get(key);
    if (d === undefined) {
      throw invalid(
        `Broker config "${key}" cannot be altered at run time: only the broker defaults of topic configs can (log.retention.ms, compression.type, min.insync.replicas, ...); the rest come from raftq's config file`,
      );
    }
    const why = d.check(value);
    if (why !== null) {
      throw invalid(`Broker config ${key}="${value}" is invalid: ${why}`);
    }
  }
}

/**
 * The topic configs that dynamic broker configs set for every topic
 * without its own value, under the topics' names: this broker's over the
 * cluster's default.
 */
export function dynamicTopicDefaults(
  dynamic: DynamicBrokerConfigs,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [synonym, d] of DYNAMIC_BROKER_CONFIGS) {
    const value = dynamic.broker[synonym] ?? dynamic.cluster[synonym];
    if (value !== undefined) out[d.name] = value;
  }
  return out;
}

/**
 * A broker's configs under Kafka's names: the ones raftq's config file
 * sets are STATIC_BROKER_CONFIG, the rest of each topic config's synonyms
 * Kafka's defaults. The topic configs' synonyms can be altered at run
 * time, for this broker or as every broker's default; those values are
 * in force over the file's.
 */
export class BrokerConfigs {
  readonly #entries = new Map<string, BrokerConfigEntry>();

  constructor(config: Config, listener: { port: number }) {
    const staticEntry = (
      name: string,
      value: string | number | boolean,
      type: number,
      raftqKey: string,
    ) =>
      this.#entries.set(name, {
        name,
        value: String(value),
        source: ConfigSource.STATIC_BROKER_CONFIG,
        type,
        doc: `raftq config ${raftqKey}`,
      });
    const advertisedPort = config.advertisedPort === 0
      ? listener.port
      : config.advertisedPort;
    staticEntry("broker.id", config.nodeId, T.INT, "node_id");
    staticEntry("node.id", config.nodeId, T.INT, "node_id");
    staticEntry(
      "listeners",
      `PLAINTEXT://${config.bindAddr}:${listener.port}`,
      T.LIST,
      "bind_addr, bind_port",
    );
    staticEntry(
      "advertised.listeners",
      `PLAINTEXT://${config.advertisedHost}:${advertisedPort}`,
      T.LIST,
      "advertised_host, advertised_port",
    );
    staticEntry("log.dirs", config.dataDir, T.STRING, "data_dir");
    staticEntry(
      "num.partitions",
      config.topics.defaultPartitions,
      T.INT,
      "topics.default_partitions",
    );
    staticEntry(
      "default.replication.factor",
      config.topics.defaultReplicationFactor,
      T.INT,
      "topics.default_replication_factor",
    );
    staticEntry(
      "auto.create.topics.enable",
      config.topics.autoCreate,
      T.BOOLEAN,
      "topics.auto_create",
    );
    staticEntry(
      "log.segment.bytes",
      config.log.segmentBytes,
      T.INT,
      "log.segment_bytes",
    );
    staticEntry("log.roll.ms", config.log.segmentMs, T.LONG, "log.segment_ms");
    staticEntry(
      "log.retention.ms",
      config.log.retentionMs,
      T.LONG,
      "log.retention_ms",
    );
    staticEntry(
      "log.retention.bytes",
      config.log.retentionBytes,
      T.LONG,
      "log.retention_bytes",
    );
    staticEntry(
      "log.index.interval.bytes",
      config.log.indexIntervalBytes,
      T.INT,
      "log.index_interval_bytes",
    );
    staticEntry(
      "offsets.topic.num.partitions",
      config.groups.offsetsPartitions,
      T.INT,
      "groups.offsets_partitions",
    );
    staticEntry(
      "offsets.retention.minutes",
      Math.ceil(config.groups.offsetsRetentionMs / 60_000),
      T.INT,
      "groups.offsets_retention",
    );
    staticEntry(
      "group.initial.rebalance.delay.ms",
      config.groups.initialRebalanceDelayMs,
      T.INT,
      "groups.initial_rebalance_delay",
    );
    staticEntry(
      "transaction.state.log.num.partitions",
      config.transactions.statePartitions,
      T.INT,
      "transactions.state_partitions",
    );
    staticEntry(
      "transaction.max.timeout.ms",
      config.transactions.maxTimeoutMs,
      T.INT,
      "transactions.max_timeout",
    );
    staticEntry(
      "transactional.id.expiration.ms",
      config.transactions.idExpirationMs,
      T.INT,
      "transactions.id_expiration",
    );
    staticEntry(
      "transaction.abort.timed.out.transaction.cleanup.interval.ms",
      config.transactions.abortCheckIntervalMs,
      T.INT,
      "transactions.abort_check_interval",
    );
    staticEntry(
      "socket.request.max.bytes",
      config.limits.maxRequestBytes,
      T.INT,
      "limits.max_request_size",
    );
    staticEntry(
      "max.connections",
      config.limits.maxConnections,
      T.INT,
      "limits.max_connections",
    );
    for (const d of TOPIC_CONFIGS) {
      if (d.synonym === undefined || this.#entries.has(d.synonym)) continue;
      this.#entries.set(d.synonym, {
        name: d.synonym,
        value: d.kafkaDefault,
        source: ConfigSource.DEFAULT_CONFIG,
        type: d.type,
        doc: d.doc,
      });
    }
  }

  /**
   * Where broker config `name` could come from, the one in force first:
   * this broker's dynamic value, the cluster's dynamic default, then the
   * config file or Kafka's default.
   */
  #chain(
    name: string,
    dynamic: DynamicBrokerConfigs,
  ): { name: string; value: string; source: number }[] {
    const chain = [];
    const own = dynamic.broker[name];
    if (own !== undefined) {
      chain.push({
        name,
        value: own,
        source: ConfigSource.DYNAMIC_BROKER_CONFIG,
      });
    }
    const cluster = dynamic.cluster[name];
    if (cluster !== undefined) {
      chain.push({
        name,
        value: cluster,
        source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
      });
    }
    const e = this.#entries.get(name)!;
    chain.push({ name, value: e.value, source: e.source });
    return chain;
  }

  describe(
    keys: readonly string[] | null,
    dynamic: DynamicBrokerConfigs,
  ): DescribedConfig[] {
    return [...this.#entries.values()]
      .filter((e) => keys === null || keys.includes(e.name))
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      .map((e) => {
        const synonyms = this.#chain(e.name, dynamic);
        return {
          ...e,
          value: synonyms[0]!.value,
          source: synonyms[0]!.source,
          readOnly: !DYNAMIC_BROKER_CONFIGS.has(e.name),
          sensitive: false,
          synonyms,
        };
      });
  }

  /**
   * A topic's configs: its own (DYNAMIC_TOPIC_CONFIG) over the broker's
   * synonym over Kafka's default, each with the chain behind it.
   */
  describeTopic(
    own: Readonly<Record<string, string>>,
    keys: readonly string[] | null,
    dynamic: DynamicBrokerConfigs,
  ): DescribedConfig[] {
    return TOPIC_CONFIGS
      .filter((d) => keys === null || keys.includes(d.name))
      .map((d) => {
        const synonyms: { name: string; value: string; source: number }[] = [];
        const set = own[d.name];
        if (set !== undefined) {
          synonyms.push({
            name: d.name,
            value: set,
            source: ConfigSource.DYNAMIC_TOPIC_CONFIG,
          });
        }
        if (d.synonym !== undefined) {
          synonyms.push(...this.#chain(d.synonym, dynamic));
        }
        if (synonyms.at(-1)?.source !== ConfigSource.DEFAULT_CONFIG) {
          synonyms.push({
            name: d.name,
            value: d.kafkaDefault,
            source: ConfigSource.DEFAULT_CONFIG,
          });
        }
        const inForce = synonyms[0]!;
        return {
          name: d.name,
          value: inForce.value,
          source: inForce.source,
          readOnly: false,
          sensitive: false,
          type: d.type,
          doc: d.doc,
          synonyms,
        };
      });
  }
}

const CODEC_OF: Readonly<Record<string, CompressionCode>> = {
  uncompressed: Compression.none,
  gzip: Compression.gzip,
  snappy: Compression.snappy,
  lz4: Compression.lz4,
  zstd: Compression.zstd,
};

/**
 * The codec, and level where one applies, that a topic's compression.type
 * has the broker store batches in; null for `producer` (as sent).
 */
export function topicCompression(
  configs: Readonly<Record<string, string>>,
): { codec: CompressionCode; level?: number } | null {
  const codec = CODEC_OF[configs["compression.type"] ?? "producer"];
  if (codec === undefined) return null;
  const levelKey = codec === Compression.gzip
    ? "compression.gzip.level"
    : codec === Compression.zstd
    ? "compression.zstd.level"
    : null;
  const level = levelKey === null ? undefined : configs[levelKey];
  // gzip's -1 is zlib's own default.
  return level === undefined || level.trim() === "-1"
    ? { codec }
    : { codec, level: Number(level) };
}

/** The topic configs raftq acts on, which the README lists. */
export function actingTopicConfigs(): string[] {
  return TOPIC_CONFIGS.filter((d) => d.acts).map((d) => d.name);
}

/**
 * A topic's own configs after `ops`: with `replace` (AlterConfigs) exactly
 * the ones set, else (IncrementalAlterConfigs) the current ones changed key
 * by key; append and subtract work on list configs, starting from the
 * default when the topic has no value of its own.
 */
export function applyConfigOps(
  current: Readonly<Record<string, string>>,
  replace: boolean,
  ops: readonly ConfigOp[],
  kind: "topic" | "broker" = "topic",
): Record<string, string> {
  const noun = kind === "topic" ? "Topic config" : "Broker config";
  const defs: ReadonlyMap<string, TopicConfigDef> = kind === "topic"
    ? TOPIC_CONFIG_BY_NAME
    : DYNAMIC_BROKER_CONFIGS;
  const next: Record<string, string> = replace ? {} : { ...current };
  for (const { key, op, value } of ops) {
    if (op === "delete") {
      delete next[key];
      continue;
    }
    if (value === null) {
      throw invalid(`${noun} "${key}" needs a value to ${op}`);
    }
    if (op === "set") {
      next[key] = value;
      continue;
    }
    const d = defs.get(key);
    if (d === undefined) {
      throw invalid(`Unknown ${noun.toLowerCase()} "${key}"`);
    }
    if (d.type !== T.LIST) {
      throw invalid(`${noun} "${key}" is not a list: cannot ${op} to it`);
    }
    const items = splitList(next[key] ?? d.kafkaDefault);
    const given = splitList(value);
    const result = op === "append"
      ? [...items, ...given.filter((i) => !items.includes(i))]
      : items.filter((i) => !given.includes(i));
    next[key] = result.join(",");
  }
  return next;
}
