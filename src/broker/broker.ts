/**
 * A raftq broker: opens its data directory, starts its Raft host (the
 * controller group and the group of every partition replica it holds) and
 * serves Kafka clients until stopped. One broker on its own is a cluster of
 * one, the same program as every member of a larger cluster: memory
 * discovery founds a one-voter controller group, and restarting the same
 * data dir with static or etcd discovery lets other brokers join it.
 */
import { type Config, ConfigError } from "../config/mod.ts";
import { PeerCredentials } from "../raft/mod.ts";
import { createLogger, type Logger } from "../util/mod.ts";
import {
  type BrokerInfo,
  createDiscovery,
  type Discovery,
} from "../discovery/mod.ts";
import { ClusterNode, MAX_CONTROLLER_VOTERS } from "./cluster/node.ts";
import { ReplicatedView } from "./cluster/view.ts";
import { createDispatcher } from "./dispatch.ts";
import type { BrokerContext } from "./handlers/context.ts";
import type { BrokerAddress } from "./ports.ts";
import type { ListenerAddress } from "./controller/mod.ts";
import { GroupCoordinator, realTimers } from "./groups/coordinator.ts";
import { OFFSETS_TOPIC, PartitionOffsetsLog } from "./groups/offsets_log.ts";
import { BrokerConfigs } from "./configs.ts";
import { PartitionManager } from "./partitions.ts";
import type { CleanOptions } from "../storage/mod.ts";
import { ControllerProducerIds } from "./producers/producer_ids.ts";
import { KafkaServer } from "./server.ts";
import { openListener } from "./listeners.ts";
import { BrokerMetrics } from "./metrics.ts";
import { ReplicatedStatus, type StatusPort } from "./status.ts";
import { INTERNAL_TOPICS, type TopicInfo } from "./topics.ts";
import {
  TXN_STATE_TOPIC,
  TxnCoordinator,
} from "./transactions/txn_coordinator.ts";
import { ClusterMarkerWriter } from "./transactions/txn_markers.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { Authorizer } from "./security/authorizer.ts";

/**
 * The internal topics' settings. Offsets are dropped by the coordinator's
 * own retention and transactional ids by theirs, not by the log's.
 */
// Compacted, as Kafka's: only the latest record per key stays (a group's
// commit per partition, a transactional id's state), so a reload reads one
// record per key, not every one ever written.
const INTERNAL_TOPIC_CONFIGS = {
  "cleanup.policy": "compact",
  "retention.ms": "-1",
  "retention.bytes": "-1",
};
/** Kafka's default max.message.bytes: the largest record set accepted. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** How often retention is enforced (Kafka's log.retention.check.interval.ms). */
const RETENTION_CHECK_MS = 60_000;
/**
 * How long a broker found through etcd waits, on its very first start, for
 * the brokers started with it to register before the cluster is founded.
 */
const FOUNDING_SETTLE_MS = 3_000;
/** How long a broker on its own waits to see itself registered before serving. */
const ALONE_READY_MS = 10_000;

export interface Broker {
  /** The first listener's port (useful when bind_port is 0). */
  readonly port: number;
  /** Every listener's bound port, by listener name. */
  readonly listenerPorts: ReadonlyMap<string, number>;
  /** Read-only answers for the admin HTTP API. */
  readonly status: StatusPort;
  /** The broker's log, in the configured format and level. */
  readonly logger: Logger;
  /** Resolves when the broker has stopped. */
  readonly closed: Promise<void>;
  /**
   * Reads tls.* and raft.tls.* again and serves new connections of the SSL
   * listeners and of the Raft transport with them; files that cannot be
   * served are logged and the old ones kept.
   */
  reloadTls(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The log cleaner's loop: a pass over the compacted partitions, then a
 * pause. A failed cleaning is logged and retried at the next pass; it never
 * stops the broker (the old segments stay as they were).
 */
async function runCleaner(
  partitions: PartitionManager,
  opts: {
    options: CleanOptions;
    backoffMs: number;
    signal: AbortSignal;
    log: (line: string) => void;
    metrics: BrokerMetrics;
  },
): Promise<void> {
  while (!opts.signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, opts.backoffMs);
      opts.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    if (opts.signal.aborted) break;
    try {
      for (
        const { partition, result } of await partitions.clean(
          opts.options,
          opts.signal,
        )
      ) {
        opts.metrics.cleaned(result);
        const mbPerSec = result.readBytes / 1048.576 /
          Math.max(1, result.durationMs);
        opts.log(
          `cleaned ${partition.topic}-${partition.index}: ` +
            `${result.sourceBytes} -> ${result.targetBytes} bytes in ` +
            `${result.durationMs} ms (${mbPerSec.toFixed(1)} MB/s read)`,
        );
      }
    } catch (err) {
      opts.log(`log cleaning failed: ${err}`);
    }
  }
}

/**
 * Before brokers on their own ran Raft, they kept topics in topics.json and
 * no Raft log. Such a data dir cannot be read now, and starting on it would
 * truncate its logs to what the (empty) Raft log can replay: refuse it.
 */
function refuseOldLayout(dataDir: string): void {
  const exists = (path: string) => {
    try {
      Deno.statSync(path);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  };
  if (exists(`${dataDir}/topics.json`) && !exists(`${dataDir}/raft`)) {
    throw new RangeError(
      `Data dir "${dataDir}" holds a single-broker layout from before raftq 0.2 (topics.json, no raft/): this version cannot read it, move it away or point data_dir elsewhere`,
    );
  }
}

/**
 * Starts this broker's Raft host and its place in the cluster. Memory
 * discovery founds a cluster of one; static discovery lists every broker
 * and so the controller's voters; with etcd the brokers that registered
 * together found the cluster (one founding record, claimed atomically in
 * etcd) and later ones join it. A data dir that already holds the
 * controller group keeps its membership, whatever discovery says.
 */
async function startClusterNode(
  config: Config,
  opts: {
    partitions: PartitionManager;
    self: BrokerAddress;
    listeners: ListenerAddress[];
    log: (m: string) => void;
    logger: Logger;
    metrics: BrokerMetrics;
  },
): Promise<{ node: ClusterNode; discovery: Discovery }> {
  const discovery = createDiscovery(config.discovery, { log: opts.log });
  const staticSelf = config.discovery.peers.find((p) =>
    p.nodeId === config.nodeId
  );
  if (config.discovery.type === "static" && staticSelf === undefined) {
    throw new RangeError(
      `Broker ${config.nodeId} is not among discovery.peers (${
        config.discovery.peers.map((p) => `${p.nodeId}@${p.host}:${p.port}`)
          .join(",")
      }): static discovery lists every broker, this one included`,
    );
  }
  const alone = config.discovery.type === "memory";
  // Nobody dials a broker on its own: a free loopback port keeps two of
  // them on one machine (tests, a second `deno task dev`) from clashing.
  const listen = alone
    ? { hostname: "127.0.0.1", port: 0 }
    : { hostname: config.bindAddr, port: config.raftPort };
  const raft = {
    hostname: staticSelf?.host ?? config.advertisedHost,
    port: alone ? 0 : staticSelf?.port ?? config.raftPort,
  };
  const info: BrokerInfo = {
    nodeId: config.nodeId,
    host: opts.self.host,
    kafkaPort: opts.self.port,
    raftHost: raft.hostname,
    raftPort: raft.port,
    status: "starting",
    startedAtMs: Date.now(),
  };
  await discovery.register(info);
  const peersOf = (brokers: BrokerInfo[]) =>
    new Map(
      brokers.filter((b) => b.nodeId !== config.nodeId && b.raftPort > 0).map(
        (b) => [b.nodeId, { hostname: b.raftHost, port: b.raftPort }],
      ),
    );
  const raftTls = raftCredentials(config);
  const node = await ClusterNode.start({
    config,
    ...(raftTls === undefined ? {} : { raftTls }),
    partitions: opts.partitions,
    kafka: {
      host: opts.self.host,
      port: opts.self.port,
      listeners: opts.listeners,
    },
    founding: async () => {
      if (config.discovery.type === "etcd") {
        await new Promise((r) => setTimeout(r, FOUNDING_SETTLE_MS));
      }
      const ids = (await discovery.list()).map((b) => b.nodeId);
      const founding = await discovery.claimFounding({
        voters: [...new Set([...ids, config.nodeId])].sort((a, b) => a - b)
          .slice(0, MAX_CONTROLLER_VOTERS),
        founder: config.nodeId,
      });
      return {
        voters: founding.voters,
        join: !founding.voters.includes(config.nodeId),
      };
    },
    peers: peersOf(await discovery.list()),
    listen,
    advertisedRaft: raft,
    log: opts.log,
    warn: (m) => opts.logger.warn(m),
    onFsync: (seconds) => opts.metrics.fsync(seconds),
  });
  discovery.watch(() => {
    discovery.list().then((brokers) => node.setPeers(peersOf(brokers)))
      .catch((err) => opts.logger.warn(`discovery list failed: ${err}`));
  });
  // Brokers that registered while this one was starting.
  node.setPeers(peersOf(await discovery.list()));
  if (alone) {
    // Its own votes elect it at once; Kafka clients that arrive next must
    // find it registered, or auto-created topics would have no broker.
    await node.registered(ALONE_READY_MS);
  }
  await discovery.update({ ...info, status: "online" });
  return { node, discovery };
}

export async function startBroker(config: Config): Promise<Broker> {
  const dataDir = config.dataDir;
  Deno.mkdirSync(dataDir, { recursive: true });
  refuseOldLayout(dataDir);
  const logger = createLogger({
    format: config.logging.format,
    level: config.logging.level,
    nodeId: config.nodeId,
  });
  const log = (message: string) => logger.info(message);
  const partitions = new PartitionManager({
    dataDir,
    defaults: {
      segmentBytes: config.log.segmentBytes,
      segmentMs: config.log.segmentMs,
      retentionMs: config.log.retentionMs,
      retentionBytes: config.log.retentionBytes,
      indexIntervalBytes: config.log.indexIntervalBytes,
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    },
  });
  const clientAuth = config.tls.clientAuth;
  const readTls = () => ({
    cert: readConfigFile("tls.cert_file", config.tls.certFile),
    key: readConfigFile("tls.key_file", config.tls.keyFile),
    ...(clientAuth === "none"
      ? {}
      : { ca: readConfigFile("tls.ca_file", config.tls.caFile) }),
  });
  const tls = config.listeners.some((l) => l.protocol.endsWith("SSL"))
    ? readTls()
    : undefined;
  const connections = { open: 0, max: config.limits.maxConnections };
  const servers = await Promise.all(
    config.listeners.map(async (listener) =>
      new KafkaServer({
        socket: await openListener({
          hostname: listener.host,
          port: listener.port,
          ...(listener.protocol.endsWith("SSL") && tls !== undefined
            ? { tls: { ...tls, clientAuth } }
            : {}),
          log,
        }),
        listener: listener.name,
        certificatePrincipals: listener.protocol === "SSL",
        maxFrameBytes: config.limits.maxRequestBytes,
        connections,
        maxInflightRequests: config.limits.maxInflightRequests,
        dispatch: (frame, conn) => dispatch(frame, conn),
        log,
      })
    ),
  );
  const server = servers[0]!;
  // Port 0 asks the OS for a port; clients must be told the real one.
  const addresses = config.listeners.map((listener, i) => ({
    name: listener.name,
    host: listener.advertisedHost,
    port: listener.advertisedPort === 0
      ? servers[i]!.port
      : listener.advertisedPort,
  }));
  const self: BrokerAddress = {
    nodeId: config.nodeId,
    host: addresses[0]!.host,
    port: addresses[0]!.port,
  };
  const metrics = new BrokerMetrics();
  const { node, discovery } = await startClusterNode(config, {
    partitions,
    self,
    listeners: addresses,
    log,
    logger,
    metrics,
  });
  const view = new ReplicatedView(node, {
    internal: INTERNAL_TOPICS,
    logDir: Deno.realPathSync(dataDir),
  });
  /**
   * A creator of an internal topic on its first use (as Kafka creates it),
   * answering the topic once it exists.
   */
  const onFirstUse = (
    name: string,
    spec: { partitions: number; configs: Record<string, string> },
  ) => {
    let creating = false;
    return (): TopicInfo | undefined => {
      const existing = view.topic(name);
      if (existing !== undefined || creating) return existing;
      creating = true;
      view.createTopic({
        name,
        partitions: spec.partitions,
        replicationFactor: Math.min(3, view.liveBrokers()),
        configs: { ...INTERNAL_TOPIC_CONFIGS, ...spec.configs },
      }).catch((err) =>
        logger.warn(`creating ${name} failed: ${err}`, { topic: name })
      ).finally(() => (creating = false));
      return undefined;
    };
  };
  const offsetsPartitions = config.groups.offsetsPartitions;
  const offsetsTopic = onFirstUse(OFFSETS_TOPIC, {
    partitions: offsetsPartitions,
    configs: { "segment.bytes": String(config.groups.offsetsSegmentBytes) },
  });
  let upgraded = false;
  const ensureOffsetsTopic = () => {
    const existing = offsetsTopic();
    if (existing !== undefined && !upgraded) {
      upgradeOffsetsTopic(existing);
      upgraded = true;
    }
  };
  // An offsets topic made before raftq compacted it has no cleanup.policy,
  // so it is kept whole (its retention is -1) and never shrinks: make it
  // compacted, as it would be made today.
  const upgradeOffsetsTopic = (topic: TopicInfo) => {
    if (topic.configs["cleanup.policy"] !== undefined) return;
    view.alterTopicConfigs(OFFSETS_TOPIC, {
      replace: false,
      ops: [{ key: "cleanup.policy", op: "set", value: "compact" }],
      validateOnly: false,
    }).then((outcome) => {
      if (outcome.errorCode !== ErrorCode.NONE) {
        throw new Error(outcome.errorMessage ?? `error ${outcome.errorCode}`);
      }
      logger.info(`${OFFSETS_TOPIC} is now compacted`, {
        topic: OFFSETS_TOPIC,
      });
    }).catch((err) => {
      upgraded = false;
      logger.warn(`compacting ${OFFSETS_TOPIC} failed: ${err}`, {
        topic: OFFSETS_TOPIC,
      });
    });
  };
  const producerIds = new ControllerProducerIds(node);
  const coordinator = new GroupCoordinator({
    log: new PartitionOffsetsLog(view, {
      partitionCount: offsetsPartitions,
    }),
    timers: realTimers,
    initialRebalanceDelayMs: config.groups.initialRebalanceDelayMs,
    offsetsRetentionMs: config.groups.offsetsRetentionMs,
    partitionExists: (topic, index) =>
      topic !== OFFSETS_TOPIC && index < (view.topic(topic)?.partitions ?? 0),
    topicId: (topic) => view.topic(topic)?.topicId,
    owns: (p: number) => view.leading(OFFSETS_TOPIC, p).ok,
  });
  const txnStateTopic = onFirstUse(TXN_STATE_TOPIC, {
    partitions: config.transactions.statePartitions,
    configs: {},
  });
  const transactions = new TxnCoordinator({
    log: new PartitionOffsetsLog(view, {
      partitionCount: config.transactions.statePartitions,
      topic: TXN_STATE_TOPIC,
    }),
    markers: new ClusterMarkerWriter(view, node, {
      onWritten: (topic, partition, marker) => {
        if (topic === OFFSETS_TOPIC) {
          coordinator.endTransaction(partition, marker);
        }
      },
    }),
    producerIds,
    timers: realTimers,
    maxTimeoutMs: config.transactions.maxTimeoutMs,
    idExpirationMs: config.transactions.idExpirationMs,
    limits: {
      maxOpen: config.transactions.maxOpen,
      maxPartitions: config.transactions.maxPartitions,
    },
    offsetsPartitionFor: (groupId) => coordinator.partitionFor(groupId),
    coordinatorEpoch: (p) => {
      const topic = view.topic(TXN_STATE_TOPIC);
      return topic === undefined
        ? -1
        : view.partitionView(topic, p).leaderEpoch;
    },
    owns: (p) => view.leading(TXN_STATE_TOPIC, p).ok,
    warn: (message) => logger.warn(message, { topic: TXN_STATE_TOPIC }),
  });
  // The coordinator of a group or transactional id is the leader of its
  // internal partition: it reads the partition back when it takes over,
  // and forgets it after.
  const coordinators = new Map([
    [OFFSETS_TOPIC, { what: "groups", of: coordinator }],
    [TXN_STATE_TOPIC, { what: "transactional ids", of: transactions }],
  ]);
  node.onLeadership((topic, partition, leading) => {
    const c = coordinators.get(topic);
    if (c === undefined) return;
    logger.info(
      `${
        leading ? "coordinating" : "no longer coordinating"
      } the ${c.what} of ${topic}-${partition}`,
      { topic, partition },
    );
    if (leading) c.of.load(partition);
    else c.of.unload(partition);
  });
  // Each broker drops the offsets of the groups it coordinates.
  node.onTopicDeleted((topic) => {
    coordinator.topicDeleted(topic).catch((err) =>
      logger.warn(
        `removing offsets of deleted topic "${topic}" failed: ${err}`,
        {
          topic,
        },
      )
    );
  });

  const stopping = new AbortController();
  const authorizer = new Authorizer({
    enabled: config.authorization.enabled,
    superUsers: config.authorization.superUsers,
    bindings: () => view.acls(),
  });
  const ctx: BrokerContext = {
    self,
    cluster: view,
    topicDefaults: {
      autoCreate: config.topics.autoCreate,
      partitions: config.topics.defaultPartitions,
      replicationFactor: config.topics.defaultReplicationFactor,
    },
    configs: new BrokerConfigs(config, { port: server.port }),
    // Kafka creates the internal topics on first use, not at start.
    groups: () => {
      ensureOffsetsTopic();
      return coordinator;
    },
    transactions: () => {
      txnStateTopic();
      return transactions;
    },
    producerIds,
    stopping: stopping.signal,
    metrics,
    authorizer,
    maxReauthMs: config.sasl.maxReauthMs,
    log,
  };
  metrics.collectFrom({
    node,
    partitions,
    coordinator,
    transactions,
    // Every listener's connections together.
    connections: {
      get connections() {
        return servers.reduce((n, s) => n + s.connections, 0);
      },
      get accepted() {
        return servers.reduce((n, s) => n + s.accepted, 0);
      },
    },
    perPartitionRaft: config.admin.perPartitionMetrics,
  });
  metrics.startProbes();
  const status = new ReplicatedStatus({
    node,
    view,
    coordinator,
    partitions,
    offsetsTopic: OFFSETS_TOPIC,
    metrics: () => metrics.registry.render(),
    authorizer,
  });

  const dispatch = createDispatcher(ctx, { listeners: config.listeners });
  for (const s of servers) s.start();
  const retention = setInterval(() => {
    const deleted = partitions.enforceRetention();
    if (deleted > 0) log(`retention deleted ${deleted} segment(s)`);
    coordinator.expireOffsets().then(
      (n) => n > 0 && log(`expired ${n} committed offset(s)`),
      (err) => logger.warn(`expiring committed offsets failed: ${err}`),
    );
  }, RETENTION_CHECK_MS);

  const txnTimeouts = setInterval(() => {
    transactions.abortTimedOut().then(
      (n) => n > 0 && log(`aborted ${n} timed-out transaction(s)`),
      (err) => logger.warn(`aborting timed-out transactions failed: ${err}`),
    );
    transactions.expireIds().then(
      (n) => n > 0 && log(`forgot ${n} expired transactional id(s)`),
      (err) => logger.warn(`expiring transactional ids failed: ${err}`),
    );
  }, config.transactions.abortCheckIntervalMs);

  const cleaning = runCleaner(partitions, {
    options: {
      keyMapBytes: config.log.cleanerKeyMapBytes,
      ioBytesPerSec: config.log.cleanerIoBytesPerSec,
      chunkPauseMs: config.log.cleanerChunkPauseMs,
    },
    backoffMs: config.log.cleanerBackoffMs,
    metrics,
    signal: stopping.signal,
    log,
  });

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      // Clients are still served meanwhile: a produce to a group whose
      // leadership moved gets NOT_LEADER_OR_FOLLOWER and goes to the new
      // leader, which needed no election timeout to take over.
      await node.handOff(config.shutdown.timeoutMs).catch((err) =>
        logger.warn(`stopping: leadership hand-off failed: ${err}`)
      );
      stopping.abort();
      clearInterval(retention);
      clearInterval(txnTimeouts);
      metrics.close();
      coordinator.close();
      transactions.close();
      await Promise.all(servers.map((s) => s.stop()));
      await node.stop();
      await discovery.close();
      await cleaning;
      partitions.closeAll();
      resolveClosed();
    })();
    return stopped;
  };
  // A pair that cannot be served is logged and the old one kept, for each
  // of the two independently.
  const kept = (what: string, files: string, err: unknown) =>
    logger.error(
      `kept the ${what} certificate: ${files} cannot be served: ${
        (err as Error).message
      }`,
    );
  const reloadListenerTls = async () => {
    if (tls === undefined) return;
    const files =
      `tls.cert_file "${config.tls.certFile}" with tls.key_file "${config.tls.keyFile}"`;
    try {
      const fresh = readTls();
      // Each listener tests the pair before it changes anything.
      await Promise.all(servers.map((s) => s.reloadTls(fresh)));
    } catch (err) {
      return kept("SSL listeners'", files, err);
    }
    logger.info(`reloaded the SSL listeners' certificate from ${files}`);
  };
  const reloadRaftTls = async () => {
    if (config.raft.tls.certFile === "") return;
    const files = `raft.tls.cert_file "${config.raft.tls.certFile}"`;
    try {
      await node.reloadRaftTls(raftCredentials(config)!);
    } catch (err) {
      return kept("Raft transport's", files, err);
    }
    logger.info(`reloaded the Raft transport's certificate from ${files}`);
  };
  // Wait one turn so that a port clash or permission error surfaces here.
  await Promise.resolve();
  return {
    port: server.port,
    listenerPorts: new Map(
      config.listeners.map((l, i) => [l.name, servers[i]!.port]),
    ),
    status,
    logger,
    closed,
    reloadTls: async () => {
      await Promise.all([reloadListenerTls(), reloadRaftTls()]);
    },
    stop,
  };
}

/** A file a config key names; one that cannot be read is a ConfigError. */
function readConfigFile(path: string, file: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (err) {
    throw new ConfigError([{
      path,
      value: file,
      message: `cannot be read: ${(err as Error).message}`,
    }]);
  }
}

/**
 * The raft.tls files, read and checked, or undefined without them; a file
 * that cannot be read or parsed stops the start with its key named.
 */
function raftCredentials(config: Config): PeerCredentials | undefined {
  const { certFile, keyFile, caFile } = config.raft.tls;
  if (certFile === "") return undefined;
  const files = {
    cert: readConfigFile("raft.tls.cert_file", certFile),
    key: readConfigFile("raft.tls.key_file", keyFile),
    ca: readConfigFile("raft.tls.ca_file", caFile),
  };
  try {
    return new PeerCredentials(files);
  } catch (err) {
    throw new ConfigError([{
      path: "raft.tls.cert_file",
      value: certFile,
      message:
        `with raft.tls.key_file "${keyFile}" and raft.tls.ca_file "${caFile}" is not a usable certificate: ${
          (err as Error).message
        }`,
    }]);
  }
}
