/**
 * Maps a request frame to its handler: decodes the header, checks the API
 * and version against what raftq advertises, decodes the body, runs the
 * handler and encodes the reply. Malformed input throws, which closes that
 * one connection; every other client goes on.
 */
import {
  ApiKey,
  type ApiKeyNum,
  decodeRequest,
  decodeRequestHeader,
  encodeResponse,
  ErrorCode,
  type RequestBodies,
  type ResponseInput,
} from "../protocol/mod.ts";
import type { BrokerContext, RequestInfo } from "./handlers/context.ts";
import {
  handleDeleteGroups,
  handleDescribeGroups,
  handleFindCoordinator,
  handleHeartbeat,
  handleJoinGroup,
  handleLeaveGroup,
  handleListGroups,
  handleOffsetCommit,
  handleOffsetDelete,
  handleOffsetFetch,
  handleSyncGroup,
} from "./handlers/groups.ts";
import { handleInitProducerId } from "./handlers/init_producer_id.ts";
import {
  handleAlterConfigs,
  handleDescribeConfigs,
  handleIncrementalAlterConfigs,
} from "./handlers/configs.ts";
import {
  handleCreatePartitions,
  handleCreateTopics,
  handleDeleteTopics,
} from "./handlers/admin_topics.ts";
import {
  handleDescribeCluster,
  handleDescribeProducers,
} from "./handlers/admin_cluster.ts";
import { handleDeleteRecords } from "./handlers/delete_records.ts";
import { handleDescribeLogDirs } from "./handlers/describe_log_dirs.ts";
import { handleFetch } from "./handlers/fetch.ts";
import { handleListOffsets } from "./handlers/list_offsets.ts";
import { handleMetadata } from "./handlers/metadata.ts";
import { handleProduce } from "./handlers/produce.ts";
import {
  handleAlterPartitionReassignments,
  handleDescribeQuorum,
  handleElectLeaders,
  handleListPartitionReassignments,
} from "./handlers/reassignments.ts";
import type { ConnectionInfo, Reply } from "./server.ts";

type Handler<K extends ApiKeyNum> = (
  ctx: BrokerContext,
  req: RequestBodies[K],
  request: RequestInfo,
) => ResponseInput[K] | null | Promise<ResponseInput[K] | null>;

interface ApiEntry<K extends ApiKeyNum> {
  readonly apiKey: K;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly handle: Handler<K>;
}

function api<K extends ApiKeyNum>(
  apiKey: K,
  range: { min: number; max: number },
  handle: Handler<K>,
): ApiEntry<K> {
  return { apiKey, minVersion: range.min, maxVersion: range.max, handle };
}

/**
 * What raftq advertises (KAFKA-COMPAT.md profile A, for the APIs implemented
 * so far). Only implemented versions are listed: clients pick the highest.
 * Produce starts at 0 although v0-2 can only carry the magic v0/v1 message
 * sets that raftq refuses: librdkafka 2.0 compresses with gzip or snappy only
 * when the broker's Produce range reaches down to version 0.
 */
const APIS: ApiEntry<ApiKeyNum>[] = [
  api(ApiKey.Produce, { min: 0, max: 9 }, handleProduce),
  api(ApiKey.Fetch, { min: 4, max: 13 }, handleFetch),
  api(ApiKey.ListOffsets, { min: 0, max: 7 }, handleListOffsets),
  api(ApiKey.Metadata, { min: 0, max: 12 }, handleMetadata),
  // Answered by the dispatcher, which knows which APIs it serves.
  api(ApiKey.ApiVersions, { min: 0, max: 3 }, () => null),
  api(ApiKey.CreateTopics, { min: 2, max: 7 }, handleCreateTopics),
  api(ApiKey.DeleteTopics, { min: 1, max: 6 }, handleDeleteTopics),
  api(ApiKey.CreatePartitions, { min: 0, max: 3 }, handleCreatePartitions),
  api(ApiKey.DescribeConfigs, { min: 0, max: 4 }, handleDescribeConfigs),
  api(ApiKey.AlterConfigs, { min: 0, max: 2 }, handleAlterConfigs),
  api(
    ApiKey.IncrementalAlterConfigs,
    { min: 0, max: 1 },
    handleIncrementalAlterConfigs,
  ),
  api(ApiKey.DeleteRecords, { min: 0, max: 2 }, handleDeleteRecords),
  api(ApiKey.DescribeLogDirs, { min: 0, max: 4 }, handleDescribeLogDirs),
  // FindCoordinator must include v0: librdkafka <= 2.11 only looks for a
  // coordinator when it does (KAFKA-COMPAT.md 3.2).
  api(ApiKey.FindCoordinator, { min: 0, max: 4 }, handleFindCoordinator),
  api(ApiKey.JoinGroup, { min: 0, max: 6 }, handleJoinGroup),
  api(ApiKey.SyncGroup, { min: 0, max: 4 }, handleSyncGroup),
  api(ApiKey.Heartbeat, { min: 0, max: 4 }, handleHeartbeat),
  api(ApiKey.LeaveGroup, { min: 0, max: 4 }, handleLeaveGroup),
  api(ApiKey.OffsetCommit, { min: 0, max: 8 }, handleOffsetCommit),
  api(ApiKey.OffsetFetch, { min: 0, max: 8 }, handleOffsetFetch),
  api(ApiKey.DescribeGroups, { min: 0, max: 5 }, handleDescribeGroups),
  api(ApiKey.ListGroups, { min: 0, max: 4 }, handleListGroups),
  api(ApiKey.DeleteGroups, { min: 0, max: 2 }, handleDeleteGroups),
  api(ApiKey.OffsetDelete, { min: 0, max: 0 }, handleOffsetDelete),
  api(ApiKey.InitProducerId, { min: 0, max: 4 }, handleInitProducerId),
  api(ApiKey.ElectLeaders, { min: 0, max: 2 }, handleElectLeaders),
  api(
    ApiKey.AlterPartitionReassignments,
    { min: 0, max: 0 },
    handleAlterPartitionReassignments,
  ),
  api(
    ApiKey.ListPartitionReassignments,
    { min: 0, max: 0 },
    handleListPartitionReassignments,
  ),
  // v2 adds listener addresses and directory ids raftq does not have.
  api(ApiKey.DescribeQuorum, { min: 0, max: 1 }, handleDescribeQuorum),
  api(ApiKey.DescribeCluster, { min: 0, max: 1 }, handleDescribeCluster),
  api(ApiKey.DescribeProducers, { min: 0, max: 0 }, handleDescribeProducers),
] as ApiEntry<ApiKeyNum>[];

const BY_KEY = new Map<number, ApiEntry<ApiKeyNum>>(
  APIS.map((a) => [a.apiKey, a]),
);

function apiVersionsBody(errorCode: number): ResponseInput[18] {
  return {
    errorCode,
    apiKeys: APIS.map((a) => ({
      apiKey: a.apiKey,
      minVersion: a.minVersion,
      maxVersion: a.maxVersion,
    })),
    throttleTimeMs: 0,
  };
}

export class UnsupportedRequestError extends Error {
  override name = "UnsupportedRequestError";
}

export function createDispatcher(
  ctx: BrokerContext,
): (frame: Uint8Array, conn: ConnectionInfo) => Promise<Reply> {
  return async (frame, conn) => {
    const { header, bodyOffset } = decodeRequestHeader(frame);
    const entry = BY_KEY.get(header.apiKey);
    const version = header.apiVersion;
    if (
      entry === undefined || version < entry.minVersion ||
      version > entry.maxVersion || bodyOffset < 0
    ) {
      if (header.apiKey === ApiKey.ApiVersions) {
        // KIP-511: answer in v0 with the supported range so the client
        // retries with a version it shares with us.
        return encodeResponse(
          ApiKey.ApiVersions,
          0,
          header.correlationId,
          apiVersionsBody(ErrorCode.UNSUPPORTED_VERSION),
        );
      }
      throw new UnsupportedRequestError(
        `API key ${header.apiKey} version ${version} is not supported (client ${header.clientId})`,
      );
    }
    if (entry.apiKey === ApiKey.ApiVersions) {
      return encodeResponse(
        ApiKey.ApiVersions,
        version,
        header.correlationId,
        apiVersionsBody(ErrorCode.NONE),
      );
    }
    const started = performance.now();
    let reply: ResponseInput[ApiKeyNum] | null;
    try {
      const body = decodeRequest(entry.apiKey, version, frame, bodyOffset);
      reply = await entry.handle(ctx, body, {
        version,
        clientId: header.clientId ?? "",
        clientHost: conn.remote,
      });
    } catch (err) {
      ctx.metrics.request(entry.apiKey, {
        seconds: (performance.now() - started) / 1000,
        reply: null,
      });
      throw err;
    }
    ctx.metrics.request(entry.apiKey, {
      seconds: (performance.now() - started) / 1000,
      reply: reply ?? {},
    });
    if (reply === null) return null;
    return encodeResponse(entry.apiKey, version, header.correlationId, reply);
  };
}
