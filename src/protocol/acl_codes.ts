/**
 * The numbers Kafka's ACL messages (DescribeAcls, CreateAcls, DeleteAcls)
 * and authorizedOperations bit sets use for resource types, pattern types,
 * operations and permissions (Kafka's ResourceType, PatternType,
 * AclOperation and AclPermissionType). ANY and MATCH appear only in filters.
 */
export const AclResourceTypeCode = {
  UNKNOWN: 0,
  ANY: 1,
  TOPIC: 2,
  GROUP: 3,
  CLUSTER: 4,
  TRANSACTIONAL_ID: 5,
  DELEGATION_TOKEN: 6,
  USER: 7,
} as const;

export const AclPatternTypeCode = {
  UNKNOWN: 0,
  ANY: 1,
  MATCH: 2,
  LITERAL: 3,
  PREFIXED: 4,
} as const;

export const AclOperationCode = {
  UNKNOWN: 0,
  ANY: 1,
  ALL: 2,
  READ: 3,
  WRITE: 4,
  CREATE: 5,
  DELETE: 6,
  ALTER: 7,
  DESCRIBE: 8,
  CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10,
  ALTER_CONFIGS: 11,
  IDEMPOTENT_WRITE: 12,
} as const;

export const AclPermissionCode = {
  UNKNOWN: 0,
  ANY: 1,
  DENY: 2,
  ALLOW: 3,
} as const;

/** The code of a table's entry, named in any case ("write" or "WRITE"). */
export function aclCode(
  table: Readonly<Record<string, number>>,
  name: string,
): number {
  return table[name.toUpperCase()]!;
}

/** A code table's name for `code`, or undefined for a number it lacks. */
export function aclCodeName(
  table: Readonly<Record<string, number>>,
  code: number,
): string | undefined {
  return Object.entries(table).find(([, c]) => c === code)?.[0];
}

/**
 * The names raftq gives the resource types, pattern types, operations and
 * permissions an ACL binding can hold: the code tables' entries in
 * lowercase, without the filter-only ANY, MATCH and UNKNOWN.
 */
export const ACL_RESOURCE_TYPES = [
  "topic",
  "group",
  "cluster",
  "transactional_id",
] as const;
export type AclResourceType = typeof ACL_RESOURCE_TYPES[number];

/** literal: the name itself (or "*" for every one); prefixed: names starting with it. */
export const ACL_PATTERN_TYPES = ["literal", "prefixed"] as const;
export type AclPatternType = typeof ACL_PATTERN_TYPES[number];

export const ACL_OPERATIONS = [
  "all",
  "read",
  "write",
  "create",
  "delete",
  "alter",
  "describe",
  "cluster_action",
  "describe_configs",
  "alter_configs",
  "idempotent_write",
] as const;
export type AclOperationName = typeof ACL_OPERATIONS[number];

export const ACL_PERMISSIONS = ["allow", "deny"] as const;
export type AclPermission = typeof ACL_PERMISSIONS[number];

/** Kafka's name of the one cluster resource, the only name a cluster ACL may have. */
export const CLUSTER_RESOURCE_NAME = "kafka-cluster";

/** One ACL, as Kafka's AclBinding: who may (or may not) do what on which resources. */
export interface AclBinding {
  resourceType: AclResourceType;
  patternType: AclPatternType;
  /** A name, "*" for every resource of the type, or a prefix. */
  resourceName: string;
  /** "User:alice", or "User:*" for every principal. */
  principal: string;
  /** A client address, or "*" for any. */
  host: string;
  operation: AclOperationName;
  permission: AclPermission;
}

/** A binding's fields as DescribeAcls and DeleteAcls carry them on the wire. */
export function aclBindingCodes(b: AclBinding) {
  return {
    resourceType: aclCode(AclResourceTypeCode, b.resourceType),
    resourceName: b.resourceName,
    patternType: aclCode(AclPatternTypeCode, b.patternType),
    principal: b.principal,
    host: b.host,
    operation: aclCode(AclOperationCode, b.operation),
    permissionType: aclCode(AclPermissionCode, b.permission),
  };
}
