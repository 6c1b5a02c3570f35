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
  handleTxnOffsetCommit,
} from "./handlers/groups.ts";
import { handleInitProducerId } from "./handlers/init_producer_id.ts";
import {
  handleAddOffsetsToTxn,
  handleAddPartitionsToTxn,
  handleDescribeTransactions,
  handleEndTxn,
  handleListTransactions,
} from "./handlers/transactions.ts";
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
import {
  handleCreateAcls,
  handleDeleteAcls,
  handleDescribeAcls,
} from "./handlers/acls.ts";
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
import {
  handleAlterUserScramCredentials,
  handleDescribeUserScramCredentials,
} from "./handlers/users.ts";
import {
  authenticate,
  renewSession,
  SaslFailure,
  startHandshake,
} from "./security/sasl.ts";
import { isLoopback, type Session } from "./security/session.ts";
import type { ConnectionInfo, Reply } from "./server.ts";
import type { Listener } from "../config/mod.ts";
import { assert } from "../util/mod.ts";

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
  api(ApiKey.Produce, { min: 0, max: 11 }, handleProduce),
  api(ApiKey.Fetch, { min: 4, max: 16 }, handleFetch),
  api(ApiKey.ListOffsets, { min: 0, max: 7 }, handleListOffsets),
  api(ApiKey.Metadata, { min: 0, max: 12 }, handleMetadata),
  api(
    ApiKey.ApiVersions,
    { min: 0, max: 3 },
    () => apiVersionsBody(ErrorCode.NONE),
  ),
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
  // v4 and up are KIP-890's (TRANSACTION_ABORTABLE, epoch bump per end).
  api(ApiKey.AddPartitionsToTxn, { min: 0, max: 3 }, handleAddPartitionsToTxn),
  api(ApiKey.AddOffsetsToTxn, { min: 0, max: 3 }, handleAddOffsetsToTxn),
  api(ApiKey.EndTxn, { min: 0, max: 3 }, handleEndTxn),
  api(ApiKey.TxnOffsetCommit, { min: 0, max: 3 }, handleTxnOffsetCommit),
  api(
    ApiKey.DescribeTransactions,
    { min: 0, max: 0 },
    handleDescribeTransactions,
  ),
  api(ApiKey.ListTransactions, { min: 0, max: 1 }, handleListTransactions),
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
  api(ApiKey.DescribeAcls, { min: 0, max: 3 }, handleDescribeAcls),
  api(ApiKey.CreateAcls, { min: 0, max: 3 }, handleCreateAcls),
  api(ApiKey.DeleteAcls, { min: 0, max: 3 }, handleDeleteAcls),
  // v0 is followed by bare SASL tokens, which the dispatcher reads itself.
  api(ApiKey.SaslHandshake, { min: 0, max: 1 }, (_ctx, req, request) => {
    const errorCode = startHandshake(request.session, {
      listener: request.listener,
      mechanism: req.mechanism,
      rawTokens: request.version === 0,
    });
    return { errorCode, mechanisms: [...request.listener.saslMechanisms] };
  }),
  api(ApiKey.SaslAuthenticate, { min: 0, max: 2 }, (ctx, req, request) => {
    try {
      const step = authenticate(ctx.cluster, request.session, req.authBytes);
      const lifetime = renewSession(request.session, ctx.maxReauthMs);
      return {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        authBytes: step.token,
        sessionLifetimeMs: BigInt(lifetime),
      };
    } catch (err) {
      if (!(err instanceof SaslFailure)) throw err;
      request.session.failed = true;
      ctx.log(`SASL from ${request.clientHost}: ${err.message}`);
      return {
        errorCode: ErrorCode.SASL_AUTHENTICATION_FAILED,
        errorMessage: err.message,
        authBytes: new Uint8Array(0),
        sessionLifetimeMs: 0n,
      };
    }
  }),
  api(
    ApiKey.DescribeUserScramCredentials,
    { min: 0, max: 0 },
    handleDescribeUserScramCredentials,
  ),
  api(
    ApiKey.AlterUserScramCredentials,
    { min: 0, max: 0 },
    handleAlterUserScramCredentials,
  ),
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

/** A request other than SASL's on a SASL listener before authentication. */
export class UnauthenticatedRequestError extends Error {
  override name = "UnauthenticatedRequestError";
}

/** Kafka's connection.failed.authentication.delay.ms default. */
const AUTH_FAILURE_DELAY_MS = 100;

const BEFORE_AUTHENTICATION = new Set<number>([
  ApiKey.ApiVersions,
  ApiKey.SaslHandshake,
  ApiKey.SaslAuthenticate,
]);

/**
 * While no user exists, a loopback client may create the first one on a
 * SASL listener too (it cannot authenticate yet); Metadata lets raftq's
 * client find the broker first.
 */
const BOOTSTRAP = new Set<number>([
  ApiKey.Metadata,
  ApiKey.DescribeUserScramCredentials,
  ApiKey.AlterUserScramCredentials,
]);

function served(
  ctx: BrokerContext,
  apiKey: number,
  at: { listener: Listener; session: Session },
): boolean {
  if (!at.listener.protocol.startsWith("SASL")) return true;
  if (at.session.principal !== null || BEFORE_AUTHENTICATION.has(apiKey)) {
    return true;
  }
  return BOOTSTRAP.has(apiKey) && isLoopback(at.session.remoteHost) &&
    ctx.cluster.scramUsers().length === 0;
}

function sizePrefixed(token: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + token.length);
  new DataView(frame.buffer).setInt32(0, token.length);
  frame.set(token, 4);
  return frame;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After a v0 handshake: the frame is the bare token, and so is the answer. */
async function rawToken(
  ctx: BrokerContext,
  frame: Uint8Array,
  conn: ConnectionInfo,
): Promise<Reply> {
  try {
    const step = authenticate(ctx.cluster, conn.session, frame);
    // A v0 client cannot learn the lifetime: its connection closes at the end.
    renewSession(conn.session, ctx.maxReauthMs);
    return sizePrefixed(step.token);
  } catch (err) {
    if (!(err instanceof SaslFailure)) throw err;
    // A v0 client learns of the failure only from the close.
    await pause(AUTH_FAILURE_DELAY_MS);
    throw err;
  }
}

/**
 * Runs one request's answer and records it in the request, latency and
 * error series; every request that gets as far as an answer goes through
 * here, so the series count all of them.
 */
async function measured<R extends object | null>(
  ctx: BrokerContext,
  apiKey: ApiKeyNum,
  answer: () => R | Promise<R>,
): Promise<R> {
  const started = performance.now();
  let reply: R;
  try {
    reply = await answer();
  } catch (err) {
    ctx.metrics.request(apiKey, {
      seconds: (performance.now() - started) / 1000,
      reply: null,
    });
    throw err;
  }
  ctx.metrics.request(apiKey, {
    seconds: (performance.now() - started) / 1000,
    reply: reply ?? {},
  });
  return reply;
}

export function createDispatcher(
  ctx: BrokerContext,
  opts: { listeners: readonly Listener[] },
): (frame: Uint8Array, conn: ConnectionInfo) => Promise<Reply> {
  const listeners = new Map(opts.listeners.map((l) => [l.name, l]));
  return async (frame, conn) => {
    const listener = listeners.get(conn.listener);
    assert(listener !== undefined, "Connection on an unknown listener", {
      listener: conn.listener,
    });
    const session = conn.session;
    if (session.rawTokens && session.principal === null) {
      return await rawToken(ctx, frame, conn);
    }
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
        const reply = await measured(
          ctx,
          ApiKey.ApiVersions,
          () => apiVersionsBody(ErrorCode.UNSUPPORTED_VERSION),
        );
        return encodeResponse(
          ApiKey.ApiVersions,
          0,
          header.correlationId,
          reply,
        );
      }
      throw new UnsupportedRequestError(
        `API key ${header.apiKey} version ${version} is not supported (client ${header.clientId})`,
      );
    }
    if (
      session.expiresAt !== null && Date.now() >= session.expiresAt &&
      !BEFORE_AUTHENTICATION.has(entry.apiKey)
    ) {
      throw new UnauthenticatedRequestError(
        `API key ${entry.apiKey} after the SASL session of ${session.principal} expired (sasl.max_reauth) on listener ${listener.name}`,
      );
    }
    if (!served(ctx, entry.apiKey, { listener, session })) {
      throw new UnauthenticatedRequestError(
        `API key ${entry.apiKey} before SASL authentication on listener ${listener.name}`,
      );
    }
    const reply = await measured(ctx, entry.apiKey, () => {
      const body = decodeRequest(entry.apiKey, version, frame, bodyOffset);
      return entry.handle(ctx, body, {
        version,
        clientId: header.clientId ?? "",
        clientHost: conn.remote,
        listener,
        session,
      });
    });
    if (session.failed) {
      await pause(AUTH_FAILURE_DELAY_MS);
      conn.closeAfterReplies();
    }
    if (reply === null) return null;
    return encodeResponse(entry.apiKey, version, header.correlationId, reply);
  };
}
