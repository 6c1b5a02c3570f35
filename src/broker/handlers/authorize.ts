/**
 * The ACL checks handlers make, in the request's terms: who sent it (the
 * session's principal and address) and which resource it touches.
 */
import { aclCode, AclOperationCode } from "../../protocol/mod.ts";
import {
  type AclResourceType,
  CLUSTER_RESOURCE_NAME,
} from "../controller/mod.ts";
import { accessOf, type Operation } from "../security/authorizer.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

export function allows(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: { type: AclResourceType; name: string; operation: Operation },
): boolean {
  return ctx.authorizer.authorize(accessOf(request.session), resource);
}

export function allowsOnCluster(
  ctx: BrokerContext,
  request: RequestInfo,
  operation: Operation,
): boolean {
  return allows(ctx, request, {
    type: "cluster",
    name: CLUSTER_RESOURCE_NAME,
    operation,
  });
}

/** The message of a CLUSTER_AUTHORIZATION_FAILED for `operation`. */
export function clusterRefusal(operation: Operation): string {
  return `${operation.toUpperCase()} on the cluster is not allowed`;
}

/** The message of a TOPIC_AUTHORIZATION_FAILED for `operation` on `name`. */
export function topicRefusal(operation: Operation, name: string): string {
  return `${operation.toUpperCase()} on topic "${name}" is not allowed`;
}

/** Some resource of the type allows it (Kafka's authorizeByResourceType). */
export function allowsOnAny(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: { type: AclResourceType; operation: Operation },
): boolean {
  return ctx.authorizer.authorizeAny(accessOf(request.session), resource);
}

/** Kafka's operations that apply to each resource type, for authorizedOperations. */
const OPERATIONS_OF: Record<AclResourceType, readonly Operation[]> = {
  topic: [
    "read",
    "write",
    "create",
    "delete",
    "alter",
    "describe",
    "describe_configs",
    "alter_configs",
  ],
  group: ["read", "delete", "describe"],
  cluster: [
    "create",
    "alter",
    "describe",
    "cluster_action",
    "describe_configs",
    "alter_configs",
    "idempotent_write",
  ],
  transactional_id: ["write", "describe"],
};

/** The authorized-operations value of a request that did not ask for them. */
export const NO_AUTHORIZED_OPERATIONS = -2147483648;

/** The authorizedOperations bit set (1 << AclOperation code) of one resource. */
export function authorizedOperations(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: { type: AclResourceType; name: string },
): number {
  return ctx.authorizer
    .operationsOn(
      accessOf(request.session),
      resource,
      OPERATIONS_OF[resource.type],
    )
    .reduce((bits, op) => bits | (1 << aclCode(AclOperationCode, op)), 0);
}

export function clusterAuthorizedOperations(
  ctx: BrokerContext,
  request: RequestInfo,
): number {
  return authorizedOperations(ctx, request, {
    type: "cluster",
    name: CLUSTER_RESOURCE_NAME,
  });
}
