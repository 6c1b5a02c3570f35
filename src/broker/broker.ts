/**
 * A single raftq broker: opens its data directory, recovers every partition,
 * and serves Kafka clients until stopped. The cluster issue adds the Raft
 * host, discovery and the controller behind the same BrokerContext.
 */
import type { Config } from "../config/mod.ts";
import { Flusher } from "../storage/mod.ts";
import { createDispatcher } from "./dispatch.ts";
import type { BrokerContext, TopicSpec } from "./handlers/context.ts";
import { GroupCoordinator, realTimers } from "./groups/coordinator.ts";
import { OFFSETS_TOPIC, PartitionOffsetsLog } from "./groups/offsets_log.ts";
import { PartitionManager } from "./partitions.ts";
import { ProducerIdAllocator } from "./producers/producer_ids.ts";
import { KafkaServer } from "./server.ts";
import { TopicError, type TopicInfo, TopicStore } from "./topics.ts";

/** Kafka's default max.message.bytes: the largest record set accepted. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
const INVALID_TOPIC_EXCEPTION = 17;
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
  // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const clusterId = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-")
    .replaceAll("/", "_").replace(/=+$/, "");
  const tmp = `${file}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify({ clusterId }));
  Deno.renameSync(tmp, file);
  return clusterId;
}

export async function startBroker(config: Config): Promise<Broker> {
  const dataDir = config.dataDir;
  Deno.mkdirSync(dataDir, { recursive: true });
  const clusterId = readClusterId(dataDir);
  const log = (message: string) =>
    console.error(`raftq[${config.nodeId}]: ${message}`);
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
  const topics = TopicStore.open(dataDir);
  for (const t of topics.list()) partitions.openTopic(t);
  const producerIds = ProducerIdAllocator.open(dataDir);

  // The offsets topic's partition count is fixed once it exists.
  const offsetsPartitions = topics.get(OFFSETS_TOPIC)?.partitions ??
    config.groups.offsetsPartitions;
  const coordinator = new GroupCoordinator({
    log: new PartitionOffsetsLog(partitions, offsetsPartitions),
    timers: realTimers,
    initialRebalanceDelayMs: config.groups.initialRebalanceDelayMs,
    offsetsRetentionMs: config.groups.offsetsRetentionMs,
    partitionExists: (topic, index) =>
      topic !== OFFSETS_TOPIC && partitions.get(topic, index) !== undefined,
  });
  const loadAll = () => {
    for (let i = 0; i < offsetsPartitions; i++) coordinator.load(i);
  };
  let groupsReady = false;
  const groups = () => {
    if (!groupsReady) {
      groupsReady = true;
      if (topics.get(OFFSETS_TOPIC) === undefined) {
        partitions.openTopic(topics.create({
          name: OFFSETS_TOPIC,
          partitions: offsetsPartitions,
          replicationFactor: 1,
          // Offsets are never deleted by time or size: the coordinator
          // writes tombstones instead.
          configs: { "retention.ms": "-1", "retention.bytes": "-1" },
          liveBrokers: 1,
        }));
        loadAll();
      }
    }
    return coordinator;
  };

  const server = new KafkaServer({
    hostname: config.bindAddr,
    port: config.bindPort,
    maxFrameBytes: config.limits.maxRequestBytes,
    maxConnections: config.limits.maxConnections,
    maxInflightRequests: config.limits.maxInflightRequests,
    dispatch: (frame, conn) => dispatch(frame, conn),
    log,
  });
  const stopping = new AbortController();
  const ctx: BrokerContext = {
    self: {
      nodeId: config.nodeId,
      clusterId,
      host: config.advertisedHost,
      // bind_port 0 asks the OS for a port; clients must be told the real one.
      port: config.advertisedPort === 0 ? server.port : config.advertisedPort,
    },
    topics,
    partitions,
    topicDefaults: {
      autoCreate: config.topics.autoCreate,
      partitions: config.topics.defaultPartitions,
      replicationFactor: config.topics.defaultReplicationFactor,
    },
    liveBrokers: () => 1,
    createTopic(spec: TopicSpec): TopicInfo {
      const info = topics.create({ ...spec, liveBrokers: 1 });
      partitions.openTopic(info);
      return info;
    },
    deleteTopic(name: string): TopicInfo {
      if (name === OFFSETS_TOPIC) {
        throw new TopicError(
          INVALID_TOPIC_EXCEPTION,
          `Topic "${name}" is internal and cannot be deleted`,
        );
      }
      const info = topics.delete(name);
      partitions.dropTopic(info);
      if (groupsReady) {
        coordinator.removeTopicOffsets(name).catch((err) =>
          log(`removing offsets of deleted topic "${name}" failed: ${err}`)
        );
      }
      return info;
    },
    groups,
    producerIds,
    stopping: stopping.signal,
    log,
  };

  const dispatch = createDispatcher(ctx);
  server.start();
  if (topics.get(OFFSETS_TOPIC) !== undefined) {
    // Serve at once; groups answer "loading" until their partition is read.
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
