/**
 * Every config field in one table: its YAML key, where it lands in `Config`,
 * its kind, its default and a line of documentation. Loading, environment
 * names, unknown-key suggestions and `describeConfig()` all read this table,
 * so a new field is one row here plus its line in the `Config` type.
 */
import {
  boolean,
  duration,
  integer,
  type Kind,
  listeners,
  type ListenerSpec,
  nodeId,
  oneOf,
  type Peer,
  peers,
  port,
  size,
  text,
  textList,
} from "./kinds.ts";

export type DiscoveryType = "memory" | "static" | "etcd";

/**
 * A Kafka listener with every default filled in; an advertisedPort of 0
 * stands for the port the OS chose when the listener's port is 0.
 */
export type Listener = Required<ListenerSpec>;

export type ClientAuth = "none" | "requested" | "required";

export interface Config {
  /** Numeric broker id, unique in the cluster. */
  readonly nodeId: number;
  /** The node_id as written ("broker-1"), or "broker-<id>" when a number. */
  readonly nodeName: string;
  readonly bindAddr: string;
  /** 0 lets the OS choose a free port. */
  readonly bindPort: number;
  /** Host that Metadata responses tell clients to connect to. */
  readonly advertisedHost: string;
  /** Port told to clients; bindPort unless set (behind NAT or a proxy). */
  readonly advertisedPort: number;
  /**
   * Never empty: one PLAINTEXT listener on bind_addr:bind_port unless
   * `listeners` is set. The first is the one other brokers probe.
   */
  readonly listeners: readonly Listener[];
  readonly tls: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly clientAuth: ClientAuth;
    readonly caFile: string;
  };
  readonly raftPort: number;
  /** ./data/broker-<nodeId> unless set. */
  readonly dataDir: string;
  readonly raft: {
    readonly rttMs: number;
    readonly heartbeatRtt: number;
    readonly electionRtt: number;
    readonly checkQuorum: boolean;
    readonly snapshotEntries: number;
    readonly compactionOverhead: number;
    readonly maxInMemLogSizeBytes: number;
    /** All three or none: TLS and peer proofs on the Raft transport. */
    readonly tls: {
      readonly certFile: string;
      readonly keyFile: string;
      readonly caFile: string;
    };
  };
  readonly discovery: {
    readonly type: DiscoveryType;
    readonly endpoints: readonly string[];
    readonly username: string;
    readonly password: string;
    readonly timeoutMs: number;
    readonly prefix: string;
    readonly peers: readonly Peer[];
  };
  readonly performance: {
    readonly maxBatchSize: number;
    readonly maxBatchBytes: number;
    readonly batchTimeoutMs: number;
  };
  readonly log: {
    readonly segmentBytes: number;
    readonly segmentMs: number;
    /** -1: keep forever. */
    readonly retentionMs: number;
    /** -1: no size limit. */
    readonly retentionBytes: number;
    readonly indexIntervalBytes: number;
    /** Read plus written bytes per second of the cleaner, per broker. */
    readonly cleanerIoBytesPerSec: number;
    /** Memory of one cleaning's key map (the latest offset per key). */
    readonly cleanerKeyMapBytes: number;
    /** Pause between two passes of the cleaner over the compacted logs. */
    readonly cleanerBackoffMs: number;
    /** Pause after every chunk a cleaning reads: a test hook, 0 in use. */
    readonly cleanerChunkPauseMs: number;
  };
  readonly topics: {
    readonly autoCreate: boolean;
    readonly defaultPartitions: number;
    readonly defaultReplicationFactor: number;
  };
  readonly groups: {
    /** Partitions of __consumer_offsets, fixed when it is created. */
    readonly offsetsPartitions: number;
    readonly offsetsRetentionMs: number;
    /** segment.bytes of __consumer_offsets, set when it is created. */
    readonly offsetsSegmentBytes: number;
    readonly initialRebalanceDelayMs: number;
  };
  readonly transactions: {
    /** Partitions of __transaction_state, fixed when it is created. */
    readonly statePartitions: number;
    /** Kafka's transaction.max.timeout.ms: longer client timeouts are refused. */
    readonly maxTimeoutMs: number;
    /** How often open transactions are checked against their timeout. */
    readonly abortCheckIntervalMs: number;
    /** Kafka's transactional.id.expiration.ms. */
    readonly idExpirationMs: number;
    /** Transactions open at once on one broker's coordinators. */
    readonly maxOpen: number;
    /** Partitions in one transaction. */
    readonly maxPartitions: number;
  };
  readonly limits: {
    readonly maxRequestBytes: number;
    readonly maxConnections: number;
    /** Per connection. */
    readonly maxInflightRequests: number;
  };
  readonly sasl: {
    /** 0: a SASL session lasts as long as its connection. */
    readonly maxReauthMs: number;
  };
  readonly shutdown: {
    /** How long a stopping broker waits for its groups' leadership to move. */
    readonly timeoutMs: number;
  };
  readonly authorization: {
    /** Off: every request is allowed, whatever the ACLs say. */
    readonly enabled: boolean;
    /** Principals ("User:admin") that every ACL check allows. */
    readonly superUsers: readonly string[];
  };
  readonly admin: {
    readonly bindAddr: string;
    /** 0: no admin HTTP listener. */
    readonly port: number;
    /** Raft series per partition group besides the aggregates. */
    readonly perPartitionMetrics: boolean;
    /** HTTPS with the Kafka listeners' tls.cert_file and tls.key_file. */
    readonly tls: boolean;
    /** basic: HTTP Basic credentials of a SASL/SCRAM user, but on health probes. */
    readonly auth: "none" | "basic";
  };
  /** Keys under `log.` in YAML, beside the segment settings. */
  readonly logging: {
    readonly format: "text" | "json";
    readonly level: "debug" | "info" | "warn" | "error";
  };
}

export interface Field {
  /** Dotted snake_case path as written in YAML and --set. */
  readonly key: string;
  /** Dotted camelCase path in `Config`. */
  readonly prop: string;
  readonly kind: Kind<unknown>;
  /** In the form a user would write it; undefined when derived at load. */
  readonly default: unknown;
  readonly doc: string;
}

const INT32_MAX = 2 ** 31 - 1;

export const FIELDS: readonly Field[] = [
  {
    key: "node_id",
    prop: "nodeId",
    kind: nodeId(),
    default: 1,
    doc: "Broker id, unique in the cluster; a name ending in digits works",
  },
  {
    key: "bind_addr",
    prop: "bindAddr",
    kind: text({ nonEmpty: true }),
    default: "0.0.0.0",
    doc: "Address the Kafka listener binds to (when listeners is empty)",
  },
  {
    key: "bind_port",
    prop: "bindPort",
    kind: port({ zeroMeans: "a free port chosen by the OS" }),
    default: 9092,
    doc: "Port of the Kafka listener (when listeners is empty)",
  },
  {
    key: "advertised_host",
    prop: "advertisedHost",
    kind: text({ nonEmpty: true }),
    default: "localhost",
    doc: "Host that clients are told to connect to",
  },
  {
    key: "advertised_port",
    prop: "advertisedPort",
    kind: port(),
    default: undefined,
    doc: "Port that clients are told to connect to (default: bind_port)",
  },
  {
    key: "listeners",
    prop: "listeners",
    kind: listeners(),
    default: [],
    doc:
      "Kafka listeners, each {name, host, port, protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), advertised_host, advertised_port, sasl_mechanisms}; empty: one PLAINTEXT listener on bind_addr:bind_port",
  },
  {
    key: "tls.cert_file",
    prop: "tls.certFile",
    kind: text(),
    default: "",
    doc: "PEM certificate chain of the SSL and SASL_SSL listeners",
  },
  {
    key: "tls.key_file",
    prop: "tls.keyFile",
    kind: text(),
    default: "",
    doc: "PEM private key of tls.cert_file",
  },
  {
    key: "tls.client_auth",
    prop: "tls.clientAuth",
    kind: oneOf(["none", "requested", "required"]),
    default: "none",
    doc:
      "Client certificates on the SSL and SASL_SSL listeners: none; requested (a client may present one); required (the handshake fails without one); a certificate must chain to tls.ca_file, and on an SSL listener its subject is the principal (User:CN=alice,O=acme)",
  },
  {
    key: "tls.ca_file",
    prop: "tls.caFile",
    kind: text(),
    default: "",
    doc:
      "PEM CA certificates that client certificates must chain to; needed when tls.client_auth is requested or required",
  },
  {
    key: "raft_port",
    prop: "raftPort",
    kind: port({ zeroMeans: "a free port chosen by the OS" }),
    default: 19092,
    doc: "Port for Raft traffic between brokers",
  },
  {
    key: "data_dir",
    prop: "dataDir",
    kind: text({ nonEmpty: true }),
    default: undefined,
    doc: "Directory for logs and Raft state (default: ./data/broker-<node_id>)",
  },
  {
    key: "raft.rtt_millisecond",
    prop: "raft.rttMs",
    kind: integer({ min: 1, max: 60_000 }),
    // A LAN's default: an election in 0.5-1 s. A loaded host that stalls its
    // event loop for longer than election_rtt ticks sees false elections:
    // raise this on slow or busy machines.
    default: 50,
    doc:
      "One Raft tick, in ms; other Raft timings count ticks. 50 elects a new leader within 0.5-1 s of a fault; raise it where the event loop may stall longer (false elections)",
  },
  {
    key: "raft.heartbeat_rtt",
    prop: "raft.heartbeatRtt",
    kind: integer({ min: 1, max: 10_000 }),
    default: 2,
    doc: "Ticks between leader heartbeats",
  },
  {
    key: "raft.election_rtt",
    prop: "raft.electionRtt",
    kind: integer({ min: 2, max: 100_000 }),
    default: 10,
    doc: "Ticks without a leader before an election; > 2 × heartbeat_rtt",
  },
  {
    key: "raft.check_quorum",
    prop: "raft.checkQuorum",
    kind: boolean(),
    default: true,
    doc: "A leader steps down when it stops hearing from a quorum",
  },
  {
    key: "raft.snapshot_entries",
    prop: "raft.snapshotEntries",
    kind: integer({ min: 0 }),
    default: 10_000,
    doc: "Applied entries between snapshots (0: never)",
  },
  {
    key: "raft.compaction_overhead",
    prop: "raft.compactionOverhead",
    kind: integer({ min: 0 }),
    default: 5_000,
    doc: "Entries kept behind a snapshot for slow followers",
  },
  {
    key: "raft.max_in_mem_log_size",
    prop: "raft.maxInMemLogSizeBytes",
    kind: size({ min: 1 }),
    default: "16MiB",
    doc:
      "Raft log a group keeps in memory; past it the group snapshots and compacts (a group without other members at an eighth of it)",
  },
  {
    key: "raft.tls.cert_file",
    prop: "raft.tls.certFile",
    kind: text(),
    default: "",
    doc:
      "PEM certificate of this broker on the Raft transport, issued by raft.tls.ca_file; with the other two raft.tls keys, Raft traffic is TLS and only brokers with such a certificate get through",
  },
  {
    key: "raft.tls.key_file",
    prop: "raft.tls.keyFile",
    kind: text(),
    default: "",
    doc: "PEM private key of raft.tls.cert_file",
  },
  {
    key: "raft.tls.ca_file",
    prop: "raft.tls.caFile",
    kind: text(),
    default: "",
    doc:
      "PEM certificate of the CA that issues the brokers' Raft certificates; other brokers' certificates are checked against it",
  },
  {
    key: "discovery.type",
    prop: "discovery.type",
    kind: oneOf(["memory", "static", "etcd"]),
    default: "memory",
    doc: "How brokers find each other",
  },
  {
    key: "discovery.endpoints",
    prop: "discovery.endpoints",
    kind: textList(),
    default: [],
    doc: "etcd endpoints (host:port or URL)",
  },
  {
    key: "discovery.username",
    prop: "discovery.username",
    kind: text(),
    default: "",
    doc: "etcd user name",
  },
  {
    key: "discovery.password",
    prop: "discovery.password",
    kind: text(),
    default: "",
    doc: "etcd password",
  },
  {
    key: "discovery.timeout",
    prop: "discovery.timeoutMs",
    kind: duration({ min: 1 }),
    default: "5s",
    doc: "Timeout of discovery calls",
  },
  {
    key: "discovery.prefix",
    prop: "discovery.prefix",
    kind: text({ nonEmpty: true }),
    default: "/raftq",
    doc: "etcd key prefix of this cluster",
  },
  {
    key: "discovery.peers",
    prop: "discovery.peers",
    kind: peers(),
    default: [],
    doc: 'Static voters, "id@host:raft_port" (controller.quorum.voters form)',
  },
  {
    key: "performance.max_batch_size",
    prop: "performance.maxBatchSize",
    kind: integer({ min: 1, max: 1_000_000 }),
    default: 500,
    doc:
      "Most produced record sets merged into one Raft entry of a partition; 1 turns merging off",
  },
  {
    key: "performance.max_batch_bytes",
    prop: "performance.maxBatchBytes",
    // One Raft message between brokers; the transport's frames stop at 64 MiB.
    kind: size({ min: 1, max: 32 * 1024 * 1024 }),
    default: "4MiB",
    doc:
      "Most record set bytes merged into one Raft entry; a larger set is proposed alone",
  },
  {
    key: "performance.batch_timeout",
    prop: "performance.batchTimeoutMs",
    kind: duration({ min: 0, max: 60_000 }),
    default: "0ms",
    doc:
      "Longest a record set waits for its partition's in-flight Raft entry to commit, to go out merged with the sets that waited with it; a partition with nothing in flight proposes at once, and 0 never waits, so nothing is merged",
  },
  {
    key: "log.segment_bytes",
    prop: "log.segmentBytes",
    kind: size({ min: 1024, max: INT32_MAX }),
    default: "1GiB",
    doc: "A segment rolls over at this size",
  },
  {
    key: "log.segment_ms",
    prop: "log.segmentMs",
    kind: duration({ min: 1 }),
    default: "7d",
    doc: "A segment rolls over at this age",
  },
  {
    key: "log.retention_ms",
    prop: "log.retentionMs",
    kind: duration({ min: 1, unlimited: true }),
    default: "7d",
    doc: "Segments older than this are deleted (-1: never)",
  },
  {
    key: "log.retention_bytes",
    prop: "log.retentionBytes",
    kind: size({ min: 1, unlimited: true }),
    default: -1,
    doc:
      "Oldest segments are deleted beyond this size per partition (-1: never)",
  },
  {
    key: "log.index_interval_bytes",
    prop: "log.indexIntervalBytes",
    kind: size({ min: 1 }),
    default: 4096,
    doc: "Log bytes between two offset index entries",
  },
  {
    key: "log.cleaner_io_bytes_per_sec",
    prop: "log.cleanerIoBytesPerSec",
    kind: size({ min: 1024 }),
    default: "50MiB",
    doc:
      "Bytes per second the log cleaner reads and writes in all (it sleeps to stay under)",
  },
  {
    key: "log.cleaner_key_map_bytes",
    prop: "log.cleanerKeyMapBytes",
    kind: size({ min: 1024 }),
    default: "64MiB",
    doc:
      "Memory for one cleaning's map of keys; more keys are cleaned by the next pass",
  },
  {
    key: "log.cleaner_backoff_ms",
    prop: "log.cleanerBackoffMs",
    kind: duration({ min: 1 }),
    default: "15s",
    doc: "Pause between two passes of the log cleaner over compacted topics",
  },
  {
    key: "log.cleaner_chunk_pause_ms",
    prop: "log.cleanerChunkPauseMs",
    kind: duration({ min: 0 }),
    default: 0,
    doc:
      "Pause after each 128 KiB the cleaner reads: a test hook that slows cleaning down",
  },
  {
    key: "topics.auto_create",
    prop: "topics.autoCreate",
    kind: boolean(),
    default: true,
    doc: "Create unknown topics on first use by a client",
  },
  {
    key: "topics.default_partitions",
    prop: "topics.defaultPartitions",
    kind: integer({ min: 1, max: 100_000 }),
    default: 1,
    doc: "Partitions of an auto-created topic",
  },
  {
    key: "topics.default_replication_factor",
    prop: "topics.defaultReplicationFactor",
    kind: integer({ min: 1, max: 32_767 }),
    default: 1,
    doc: "Replicas of an auto-created topic",
  },
  {
    key: "groups.offsets_partitions",
    prop: "groups.offsetsPartitions",
    kind: integer({ min: 1, max: 1000 }),
    default: 16,
    doc:
      "Partitions of the internal __consumer_offsets topic (set at creation)",
  },
  {
    key: "groups.offsets_retention",
    prop: "groups.offsetsRetentionMs",
    kind: duration({ min: 1 }),
    default: "7d",
    doc: "How long committed offsets of a group without members are kept",
  },
  {
    key: "groups.offsets_segment_size",
    prop: "groups.offsetsSegmentBytes",
    kind: size({ min: 1024, max: INT32_MAX }),
    default: "100MiB",
    doc:
      "Segment size of __consumer_offsets (set at creation); only closed segments are compacted",
  },
  {
    key: "groups.initial_rebalance_delay",
    prop: "groups.initialRebalanceDelayMs",
    kind: duration({ min: 0, max: 300_000 }),
    default: "3s",
    doc: "Wait for more members before the first rebalance of an empty group",
  },
  {
    key: "transactions.state_partitions",
    prop: "transactions.statePartitions",
    kind: integer({ min: 1, max: 1000 }),
    default: 16,
    doc:
      "Partitions of the internal __transaction_state topic (set at creation)",
  },
  {
    key: "transactions.max_timeout",
    prop: "transactions.maxTimeoutMs",
    kind: duration({ min: 1, max: INT32_MAX }),
    default: "15m",
    doc: "Longest transaction timeout a producer may ask for",
  },
  {
    key: "transactions.max_open",
    prop: "transactions.maxOpen",
    kind: integer({ min: 1 }),
    default: 10_000,
    doc:
      "Transactions open at once on one broker's coordinators; a producer beginning one more is refused with POLICY_VIOLATION",
  },
  {
    key: "transactions.max_partitions",
    prop: "transactions.maxPartitions",
    kind: integer({ min: 1 }),
    default: 10_000,
    doc:
      "Partitions (offsets partitions included) in one transaction; adding more is refused with POLICY_VIOLATION",
  },
  {
    key: "transactions.id_expiration",
    prop: "transactions.idExpirationMs",
    kind: duration({ min: 1, max: INT32_MAX }),
    default: "7d",
    doc:
      "A transactional id with no open transaction and no request for this long is forgotten (Kafka's transactional.id.expiration.ms)",
  },
  {
    key: "transactions.abort_check_interval",
    prop: "transactions.abortCheckIntervalMs",
    kind: duration({ min: 1 }),
    default: "10s",
    doc:
      "How often transactions past their timeout are looked for and aborted, and expired transactional ids forgotten",
  },
  {
    key: "limits.max_request_size",
    prop: "limits.maxRequestBytes",
    kind: size({ min: 1024, max: INT32_MAX }),
    default: "100MiB",
    doc: "Largest Kafka request frame accepted",
  },
  {
    key: "limits.max_connections",
    prop: "limits.maxConnections",
    kind: integer({ min: 1 }),
    default: 10_000,
    doc: "Client connections accepted at once",
  },
  {
    key: "limits.max_inflight_requests",
    prop: "limits.maxInflightRequests",
    kind: integer({ min: 1, max: 100_000 }),
    default: 100,
    doc: "Requests read ahead per connection before it is paused",
  },
  {
    key: "sasl.max_reauth",
    prop: "sasl.maxReauthMs",
    kind: duration({ min: 0, max: 2 ** 31 - 1 }),
    default: "0s",
    doc:
      "How long a SASL session lasts (Kafka's connections.max.reauth.ms): SaslAuthenticate v1+ tells the client, which re-authenticates on its connection before then (KIP-368); a request on an expired session closes the connection; 0: sessions last as long as their connections",
  },
  {
    key: "shutdown.timeout",
    prop: "shutdown.timeoutMs",
    kind: duration({ min: 0, max: 600_000 }),
    default: "10s",
    doc: "How long a stopping broker tries to hand its leaderships over",
  },
  {
    key: "authorization.enabled",
    prop: "authorization.enabled",
    kind: boolean(),
    default: false,
    doc:
      "Check every request against the ACLs (raftq acl); off: everything is allowed",
  },
  {
    key: "authorization.super_users",
    prop: "authorization.superUsers",
    kind: textList(";"),
    default: [],
    doc:
      "Principals that every ACL check allows, such as User:admin or User:CN=admin,O=acme (a client certificate's); the string form separates them with ; as Kafka's super.users does; an unauthenticated client is User:ANONYMOUS",
  },
  {
    key: "admin.bind_addr",
    prop: "admin.bindAddr",
    kind: text({ nonEmpty: true }),
    default: "0.0.0.0",
    doc: "Address the admin HTTP listener (metrics, health, REST) binds to",
  },
  {
    key: "admin.port",
    prop: "admin.port",
    kind: port({ zeroMeans: "no admin HTTP listener" }),
    default: 9644,
    doc: "Port of the admin HTTP listener",
  },
  {
    key: "admin.per_partition_metrics",
    prop: "admin.perPartitionMetrics",
    kind: boolean(),
    default: false,
    doc:
      "Also export Raft metrics per partition group on /metrics (one series each: large with many partitions)",
  },
  {
    key: "admin.tls",
    prop: "admin.tls",
    kind: boolean(),
    default: false,
    doc:
      "Serve the admin listener over HTTPS with tls.cert_file and tls.key_file, the certificate of the SSL listeners",
  },
  {
    key: "admin.auth",
    prop: "admin.auth",
    kind: oneOf(["none", "basic"]),
    default: "none",
    doc:
      "basic: every admin path but the health probes asks for HTTP Basic credentials of a raftq user (raftq user create), and with authorization.enabled for DESCRIBE on the cluster",
  },

  {
    key: "log.format",
    prop: "logging.format",
    kind: oneOf(["text", "json"]),
    default: "text",
    doc: "Broker log lines on stderr: plain text or one JSON object per line",
  },
  {
    key: "log.level",
    prop: "logging.level",
    kind: oneOf(["debug", "info", "warn", "error"]),
    default: "info",
    doc: "Least severe level logged",
  },
];
