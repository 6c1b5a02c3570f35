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
import {
  allows,
  clusterAuthorizedOperations,
  NO_AUTHORIZED_OPERATIONS,
} from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";
import { liveBrokers } from "./metadata.ts";

/** KIP-919's endpoint types: raftq's listeners all serve brokers. */
const ENDPOINT_BROKERS = 1;

export function handleDescribeCluster(
  ctx: BrokerContext,
  req: DescribeClusterRequest,
  request: RequestInfo,
): DescribeClusterResponseInput {
  const operations = req.includeClusterAuthorizedOperations
    ? clusterAuthorizedOperations(ctx, request)
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
  request: RequestInfo,
): DescribeProducersResponseInput {
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => {
        const producers = allows(ctx, request, {
            type: "topic",
            name: t.name,
            operation: "read",
          })
          ? ctx.cluster.producers(t.name, partitionIndex)
          : { errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED };
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
