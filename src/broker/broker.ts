/**
 * A single raftq broker: opens its data directory, recovers every partition,
 * and serves Kafka clients until stopped. The cluster issue adds the Raft
 * host, discovery and the controller behind the same BrokerContext.
 */
import type { Config } from "../config/mod.ts";
import {
  type BrokerInfo,
  createDiscovery,
  type Discovery,
} from "../discovery/mod.ts";
import { Flusher, writeFileAtomic } from "../storage/mod.ts";
import {
  ClusterNode,
  ControllerProducerIds,
  MAX_CONTROLLER_VOTERS,
} from "./cluster/node.ts";
import { ReplicatedView } from "./cluster/view.ts";
import { createDispatcher } from "./dispatch.ts";
import { newClusterId } from "./ids.ts";
import type {
  BrokerAddress,
  BrokerContext,
  ClusterView,
} from "./handlers/context.ts";
import { GroupCoordinator, realTimers } from "./groups/coordinator.ts";
import { OFFSETS_TOPIC, PartitionOffsetsLog } from "./groups/offsets_log.ts";
import { PartitionManager } from "./partitions.ts";
import {
  ProducerIdAllocator,
  type ProducerIdSource,
} from "./producers/producer_ids.ts";
import { KafkaServer } from "./server.ts";
import { SingleNodeView } from "./single_node.ts";
import { TopicStore } from "./topics.ts";

/** Offsets are dropped by the coordinator's own retention, not by the log's. */
const OFFSETS_TOPIC_CONFIGS = { "retention.ms": "-1", "retention.bytes": "-1" };
/** Kafka's default max.message.bytes: the largest record set accepted. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** How often retention is enforced (Kafka's log.retention.check.interval.ms). */
const RETENTION_CHECK_MS = 60_000;

export interface Broker {
  /** The port Kafka clients connect to (useful when bind_port is 0). */
  readonly port: number;
  /** Resolves when the broker has stopped. */
  readonly closed: Promise<void>;
  stop(): Promise<void>;
}

function readClusterId(dataDir: string): string {
  const file = `${dataDir}/meta.json`;
  try {
    return (JSON.parse(Deno.readTextFileSync(file)) as { clusterId: string })
      .clusterId;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const clusterId = newClusterId();
  writeFileAtomic(file, JSON.stringify({ clusterId }));
  return clusterId;
}

/**
 * How long a broker found through etcd waits, on its very first start, for
 * the brokers started with it to register before the cluster is founded.
 */
const FOUNDING_SETTLE_MS = 3_000;

/**
 * Starts this broker's part of a replicated cluster. Static discovery lists
 * every broker and so the controller's voters; with etcd the brokers that
 * registered together found the cluster (one founding record, claimed
 * atomically in etcd) and later ones join it.
 */
async function startClusterNode(
  config: Config,
  opts: {
    partitions: PartitionManager;
    self: BrokerAddress;
    log: (m: string) => void;
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
  const raft = {
    hostname: staticSelf?.host ?? config.advertisedHost,
    port: staticSelf?.port ?? config.raftPort,
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
  const node = await ClusterNode.start({
    config,
    partitions: opts.partitions,
    kafka: { host: opts.self.host, port: opts.self.port },
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
    listen: { hostname: config.bindAddr, port: config.raftPort },
    advertisedRaft: raft,
    log: opts.log,
  });
  discovery.watch(() => {
    discovery.list().then((brokers) => node.setPeers(peersOf(brokers)))
      .catch((err) => opts.log(`discovery list failed: ${err}`));
  });
  // Brokers that registered while this one was starting.
  node.setPeers(peersOf(await discovery.list()));
  await discovery.update({ ...info, status: "online" });
  return { node, discovery };
}

export async function startBroker(config: Config): Promise<Broker> {
  const dataDir = config.dataDir;
  Deno.mkdirSync(dataDir, { recursive: true });
  const log = (message: string) =>
    console.error(`raftq[${config.nodeId}]: ${message}`);
  const clustered = config.discovery.type !== "memory";
  const flusher = new Flusher({
    policy: config.log.flushMode === "always"
      ? { mode: "always" }
      : { mode: "interval", intervalMs: config.log.flushIntervalMs },
    onError: (_log, err) => log(`background sync failed: ${err}`),
  });
  const partitions = new PartitionManager({
    dataDir,
    flusher,
    visibleOnAppend: config.log.flushMode === "interval",
    defaults: {
      segmentBytes: config.log.segmentBytes,
      segmentMs: config.log.segmentMs,
      retentionMs: config.log.retentionMs,
      retentionBytes: config.log.retentionBytes,
      indexIntervalBytes: config.log.indexIntervalBytes,
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    },
  });
  const server = new KafkaServer({
    hostname: config.bindAddr,
    port: config.bindPort,
    maxFrameBytes: config.limits.maxRequestBytes,
    maxConnections: config.limits.maxConnections,
    maxInflightRequests: config.limits.maxInflightRequests,
    dispatch: (frame, conn) => dispatch(frame, conn),
    log,
  });
  const self: BrokerAddress = {
    nodeId: config.nodeId,
    host: config.advertisedHost,
    // bind_port 0 asks the OS for a port; clients must be told the real one.
    port: config.advertisedPort === 0 ? server.port : config.advertisedPort,
  };
  const internal = new Set([OFFSETS_TOPIC]);

  let node: ClusterNode | null = null;
  let discovery: Discovery | null = null;
  let view: ClusterView;
  let groupsReady = false;
  const offsetsPartitions = config.groups.offsetsPartitions;
  let producerIds: ProducerIdSource;
  let ensureOffsetsTopic: () => void;
  if (clustered) {
    const started = await startClusterNode(config, { partitions, self, log });
    const n = started.node;
    node = n;
    discovery = started.discovery;
    const replicated = new ReplicatedView(n, { internal });
    producerIds = new ControllerProducerIds(n);
    view = replicated;
    let creating = false;
    ensureOffsetsTopic = () => {
      if (creating || replicated.topic(OFFSETS_TOPIC) !== undefined) return;
      creating = true;
      replicated.createTopic({
        name: OFFSETS_TOPIC,
        partitions: offsetsPartitions,
        replicationFactor: Math.min(3, replicated.liveBrokers()),
        configs: OFFSETS_TOPIC_CONFIGS,
      }).catch((err) => log(`creating ${OFFSETS_TOPIC} failed: ${err}`))
        .finally(() => (creating = false));
    };
    // The coordinator of a group is the leader of its offsets partition:
    // it reads the partition back when it takes over, and forgets it after.
    n.onLeadership((topic, partition, leading) => {
      if (topic !== OFFSETS_TOPIC) return;
      log(
        `${
          leading ? "coordinating" : "no longer coordinating"
        } the groups of ${OFFSETS_TOPIC}-${partition}`,
      );
      if (leading) coordinator.load(partition);
      else coordinator.unload(partition);
    });
    groupsReady = true;
  } else {
    const topics = TopicStore.open(dataDir);
    for (const t of topics.list()) partitions.openTopic(t);
    producerIds = ProducerIdAllocator.open(dataDir);
    view = new SingleNodeView({
      self,
      clusterId: readClusterId(dataDir),
      topics,
      partitions,
      internal,
      onDeleted: (info) => {
        if (!groupsReady) return;
        coordinator.removeTopicOffsets(info.name).catch((err) =>
          log(`removing offsets of deleted topic "${info.name}" failed: ${err}`)
        );
      },
    });
    const loadAll = () => {
      for (let i = 0; i < offsetsPartitions; i++) coordinator.load(i);
    };
    ensureOffsetsTopic = () => {
      if (topics.get(OFFSETS_TOPIC) !== undefined) return;
      partitions.openTopic(topics.create({
        name: OFFSETS_TOPIC,
        partitions: offsetsPartitions,
        replicationFactor: 1,
        configs: OFFSETS_TOPIC_CONFIGS,
        liveBrokers: 1,
      }));
      loadAll();
    };
    if (topics.get(OFFSETS_TOPIC) !== undefined) {
      groupsReady = true;
      setTimeout(() => {
        try {
          loadAll();
        } catch (err) {
          log(`loading ${OFFSETS_TOPIC} failed: ${err}`);
          throw err;
        }
      }, 0);
    }
  }
  const cluster = view;
  // Declared after the view it writes through; the callbacks above run later.
  const coordinator: GroupCoordinator = new GroupCoordinator({
    log: new PartitionOffsetsLog(cluster, offsetsPartitions),
    timers: realTimers,
    initialRebalanceDelayMs: config.groups.initialRebalanceDelayMs,
    offsetsRetentionMs: config.groups.offsetsRetentionMs,
    partitionExists: (topic, index) =>
      topic !== OFFSETS_TOPIC &&
      index < (cluster.topic(topic)?.partitions ?? 0),
    ...(clustered
      ? { owns: (p: number) => cluster.leading(OFFSETS_TOPIC, p).ok }
      : {}),
  });
  // Kafka creates the offsets topic on first use, not at start.
  const groups = () => {
    groupsReady = true;
    ensureOffsetsTopic();
    return coordinator;
  };

  const stopping = new AbortController();
  const ctx: BrokerContext = {
    self,
    cluster: view,
    topicDefaults: {
      autoCreate: config.topics.autoCreate,
      partitions: config.topics.defaultPartitions,
      replicationFactor: config.topics.defaultReplicationFactor,
    },
    groups,
    producerIds,
    stopping: stopping.signal,
    log,
  };

  const dispatch = createDispatcher(ctx);
  server.start();
  const retention = setInterval(() => {
    const deleted = partitions.enforceRetention();
    if (deleted > 0) log(`retention deleted ${deleted} segment(s)`);
    if (groupsReady) {
      coordinator.expireOffsets().then(
        (n) => n > 0 && log(`expired ${n} committed offset(s)`),
        (err) => log(`expiring committed offsets failed: ${err}`),
      );
    }
  }, RETENTION_CHECK_MS);

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      stopping.abort();
      clearInterval(retention);
      coordinator.close();
      await server.stop();
      await node?.stop();
      await discovery?.close();
      flusher.close();
      partitions.closeAll();
      resolveClosed();
    })();
    return stopped;
  };
  // Wait one turn so that a port clash or permission error surfaces here.
  await Promise.resolve();
  return { port: server.port, closed, stop };
}
