/**
 * InitProducerId (v0-4). A producer without a transactional id gets a
 * fresh producer id at epoch 0; one that names its current id and epoch
 * (v3+, KIP-360, after a sequence error) gets the next epoch of the same
 * id, or a fresh id once the epoch would overflow. A transactional
 * producer is answered by the transaction coordinator (transactions.ts).
 */
import {
  ErrorCode,
  type InitProducerIdRequest,
  type InitProducerIdResponseInput,
} from "../../protocol/mod.ts";
import { PRODUCER_EPOCH_MAX } from "../producers/producer_ids.ts";
import { allowsOnAny, allowsOnCluster } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";
import { failedInit, initTransactionalProducer } from "./transactions.ts";

export async function handleInitProducerId(
  ctx: BrokerContext,
  req: InitProducerIdRequest,
  request: RequestInfo,
): Promise<InitProducerIdResponseInput> {
  if (req.transactionalId !== null) {
    return await initTransactionalProducer(
      ctx,
      { ...req, transactionalId: req.transactionalId },
      request,
    );
  }
  // Kafka 3's rule: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
  if (
    !allowsOnCluster(ctx, request, "idempotent_write") &&
    !allowsOnAny(ctx, request, { type: "topic", operation: "write" })
  ) {
    return failedInit(ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
  }
  if (
    req.producerId >= 0n && req.producerEpoch >= 0 &&
    req.producerEpoch < PRODUCER_EPOCH_MAX
  ) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch + 1,
    };
  }
  let producerId: bigint;
  try {
    producerId = await ctx.producerIds.next();
  } catch (err) {
    // In a cluster ids come from the controller, which may be electing.
    ctx.log(`no producer id to hand out: ${err}`);
    return failedInit(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    producerId,
    producerEpoch: 0,
  };
}
