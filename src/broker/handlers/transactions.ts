/**
 * The transaction APIs a producer calls on its transaction coordinator:
 * AddPartitionsToTxn (v0-3), AddOffsetsToTxn (v0-3) and EndTxn (v0-3),
 * plus what InitProducerId does with a transactional id, and the admin
 * ones: DescribeTransactions (v0) and ListTransactions (v0-1). They check
 * ACLs and translate between wire versions and the TxnCoordinator, which
 * holds the protocol's rules.
 */
import {
  type AddOffsetsToTxnRequest,
  type AddOffsetsToTxnResponseInput,
  type AddPartitionsToTxnRequest,
  type AddPartitionsToTxnResponseInput,
  type DescribeTransactionsRequest,
  type DescribeTransactionsResponseInput,
  type EndTxnRequest,
  type EndTxnResponseInput,
  ErrorCode,
  type InitProducerIdRequest,
  type InitProducerIdResponseInput,
  type ListTransactionsRequest,
  type ListTransactionsResponseInput,
} from "../../protocol/mod.ts";
import { TXN_STATE_IDS } from "../transactions/txn_records.ts";
import { allows } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

/**
 * KIP-588 split PRODUCER_FENCED from INVALID_PRODUCER_EPOCH; clients of
 * the versions before it know only the latter.
 */
function fencedFor(
  errorCode: number,
  opts: { version: number; since: number },
): number {
  return errorCode === ErrorCode.PRODUCER_FENCED && opts.version < opts.since
    ? ErrorCode.INVALID_PRODUCER_EPOCH
    : errorCode;
}

function onTransactionalId(
  ctx: BrokerContext,
  request: RequestInfo,
  transactionalId: string,
  operation: "write" | "describe",
): boolean {
  return allows(ctx, request, {
    type: "transactional_id",
    name: transactionalId,
    operation,
  });
}

/** An InitProducerId answer that gives no producer id. */
export function failedInit(errorCode: number): InitProducerIdResponseInput {
  return { throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 };
}

/** InitProducerId for a producer that names a transactional id. */
export async function initTransactionalProducer(
  ctx: BrokerContext,
  req: InitProducerIdRequest & { transactionalId: string },
  request: RequestInfo,
): Promise<InitProducerIdResponseInput> {
  if (!onTransactionalId(ctx, request, req.transactionalId, "write")) {
    return failedInit(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  const named = req.producerId >= 0n && req.producerEpoch >= 0;
  if (!named && (req.producerId !== -1n || req.producerEpoch !== -1)) {
    return failedInit(ErrorCode.INVALID_REQUEST);
  }
  const answer = await ctx.transactions().initProducerId({
    transactionalId: req.transactionalId,
    timeoutMs: req.transactionTimeoutMs,
    expected: named
      ? { producerId: req.producerId, producerEpoch: req.producerEpoch }
      : null,
  });
  return {
    throttleTimeMs: 0,
    ...answer,
    errorCode: fencedFor(answer.errorCode, {
      version: request.version,
      since: 4,
    }),
  };
}

export async function handleAddPartitionsToTxn(
  ctx: BrokerContext,
  req: AddPartitionsToTxnRequest,
  request: RequestInfo,
): Promise<AddPartitionsToTxnResponseInput> {
  const topics = req.v3AndBelowTopics;
  const answer = (code: (topic: string) => number) => ({
    throttleTimeMs: 0,
    resultsByTopicV3AndBelow: topics.map((t) => ({
      name: t.name,
      resultsByPartition: t.partitions.map((partitionIndex) => ({
        partitionIndex,
        partitionErrorCode: code(t.name),
      })),
    })),
  });
  if (
    !onTransactionalId(ctx, request, req.v3AndBelowTransactionalId, "write")
  ) {
    return answer(() => ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  // As Kafka: a partition that cannot join spoils the request, and the
  // others are reported as not attempted.
  const problems = new Map<string, number>();
  for (const t of topics) {
    const info = ctx.cluster.topic(t.name);
    if (
      !allows(ctx, request, { type: "topic", name: t.name, operation: "write" })
    ) {
      problems.set(t.name, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    } else if (
      info === undefined ||
      t.partitions.some((p) => p < 0 || p >= info.partitions)
    ) {
      problems.set(t.name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    }
  }
  if (problems.size > 0) {
    return answer((topic) =>
      problems.get(topic) ?? ErrorCode.OPERATION_NOT_ATTEMPTED
    );
  }
  const errorCode = await ctx.transactions().addPartitions({
    transactionalId: req.v3AndBelowTransactionalId,
    producerId: req.v3AndBelowProducerId,
    producerEpoch: req.v3AndBelowProducerEpoch,
    partitions: topics.map((t) => ({
      topic: t.name,
      partitions: t.partitions,
    })),
  });
  const code = fencedFor(errorCode, { version: request.version, since: 2 });
  return answer(() => code);
}

export async function handleAddOffsetsToTxn(
  ctx: BrokerContext,
  req: AddOffsetsToTxnRequest,
  request: RequestInfo,
): Promise<AddOffsetsToTxnResponseInput> {
  const done = (errorCode: number) => ({ throttleTimeMs: 0, errorCode });
  if (!onTransactionalId(ctx, request, req.transactionalId, "write")) {
    return done(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  if (
    !allows(ctx, request, {
      type: "group",
      name: req.groupId,
      operation: "read",
    })
  ) {
    return done(ErrorCode.GROUP_AUTHORIZATION_FAILED);
  }
  // The group's offsets partition must exist for its marker to land.
  ctx.groups();
  const errorCode = await ctx.transactions().addOffsets(req);
  return done(fencedFor(errorCode, { version: request.version, since: 2 }));
}

export async function handleEndTxn(
  ctx: BrokerContext,
  req: EndTxnRequest,
  request: RequestInfo,
): Promise<EndTxnResponseInput> {
  const done = (errorCode: number) => ({ throttleTimeMs: 0, errorCode });
  if (!onTransactionalId(ctx, request, req.transactionalId, "write")) {
    return done(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  const errorCode = await ctx.transactions().endTxn({
    transactionalId: req.transactionalId,
    producerId: req.producerId,
    producerEpoch: req.producerEpoch,
    result: req.committed ? "commit" : "abort",
  });
  return done(fencedFor(errorCode, { version: request.version, since: 2 }));
}

export function handleDescribeTransactions(
  ctx: BrokerContext,
  req: DescribeTransactionsRequest,
  request: RequestInfo,
): DescribeTransactionsResponseInput {
  const coordinator = ctx.transactions();
  return {
    throttleTimeMs: 0,
    transactionStates: req.transactionalIds.map((transactionalId) => {
      const { errorCode, txn } =
        onTransactionalId(ctx, request, transactionalId, "describe")
          ? coordinator.describe(transactionalId)
          : {
            errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            txn: null,
          };
      return {
        errorCode,
        transactionalId,
        transactionState: txn?.state ?? "",
        transactionTimeoutMs: txn?.timeoutMs ?? 0,
        transactionStartTimeMs: txn?.startTimestampMs ?? -1n,
        producerId: txn?.producerId ?? -1n,
        producerEpoch: txn?.producerEpoch ?? -1,
        topics: (txn?.partitions ?? []).map((t) => ({
          topic: t.topic,
          partitions: [...t.partitions],
        })),
      };
    }),
  };
}

/**
 * ListTransactions goes to every broker, each answering for the ids it
 * coordinates; as in Kafka, ids the principal may not describe are left
 * out rather than refused.
 */
export function handleListTransactions(
  ctx: BrokerContext,
  req: ListTransactionsRequest,
  request: RequestInfo,
): ListTransactionsResponseInput {
  const unknownStateFilters = req.stateFilters.filter((s) =>
    !Object.hasOwn(TXN_STATE_IDS, s)
  );
  const answer = ctx.transactions().list({
    states: new Set(req.stateFilters),
    producerIds: new Set(req.producerIdFilters),
    durationMs: Number(req.durationFilter),
  });
  return {
    throttleTimeMs: 0,
    errorCode: answer.errorCode,
    unknownStateFilters,
    transactionStates: answer.transactions
      .filter((t) =>
        onTransactionalId(ctx, request, t.transactionalId, "describe")
      )
      .map((t) => ({
        transactionalId: t.transactionalId,
        producerId: t.txn.producerId,
        transactionState: t.txn.state,
      })),
  };
}
