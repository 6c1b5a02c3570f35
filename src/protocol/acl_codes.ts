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
