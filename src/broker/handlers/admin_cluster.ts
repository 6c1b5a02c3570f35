/**
 * DescribeCluster (v0-1, KIP-700) and DescribeProducers (v0, KIP-664): the
 * admin client's views of the cluster's brokers and of a partition's
 * idempotent producers. raftq has no transactions, so no producer is ever
 * in one (coordinator epoch and transaction start -1).
 */
import {
  type DescribeClusterRequest,
  type DescribeClusterResponseInput,
  type DescribeProducersRequest,
  type DescribeProducersResponseInput,
  ErrorCode,
} from "../../protocol/mod.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";
import { liveBrokers, NO_AUTHORIZED_OPERATIONS } from "./metadata.ts";

/** KIP-919's endpoint types: raftq's listeners all serve brokers. */
const ENDPOINT_BROKERS = 1;

/**
 * Kafka's cluster operations (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
 * DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE) as AclOperation bits:
 * without an authorizer, as in raftq, every one of them is allowed.
 */
const CLUSTER_OPERATIONS = [5, 7, 8, 9, 10, 11, 12].reduce(
  (bits, op) => bits | (1 << op),
  0,
);

export function handleDescribeCluster(
  ctx: BrokerContext,
  req: DescribeClusterRequest,
  request: RequestInfo,
): DescribeClusterResponseInput {
  const operations = req.includeClusterAuthorizedOperations
    ? CLUSTER_OPERATIONS
    : NO_AUTHORIZED_OPERATIONS;
  if (req.endpointType !== ENDPOINT_BROKERS) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
      errorMessage:
        `Endpoint type ${req.endpointType} is not served: raftq listeners serve brokers (${ENDPOINT_BROKERS})`,
      endpointType: req.endpointType,
      clusterId: ctx.cluster.clusterId(),
      controllerId: -1,
      brokers: [],
      clusterAuthorizedOperations: operations,
    };
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    endpointType: ENDPOINT_BROKERS,
    clusterId: ctx.cluster.clusterId(),
    controllerId: ctx.cluster.controllerId(),
    brokers: liveBrokers(ctx, request.listener.name).map((
      { nodeId, ...address },
    ) => ({
      brokerId: nodeId,
      ...address,
    })),
    clusterAuthorizedOperations: operations,
  };
}

export function handleDescribeProducers(
  ctx: BrokerContext,
  req: DescribeProducersRequest,
): DescribeProducersResponseInput {
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => {
        const producers = ctx.cluster.producers(t.name, partitionIndex);
        if (!Array.isArray(producers)) {
          return {
            partitionIndex,
            errorCode: producers.errorCode,
            errorMessage: null,
            activeProducers: [],
          };
        }
        return {
          partitionIndex,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          activeProducers: producers.map((p) => ({
            ...p,
            coordinatorEpoch: -1,
            currentTxnStartOffset: -1n,
          })),
        };
      }),
    })),
  };
}
