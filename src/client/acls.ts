/**
 * ACL bindings and filters as the client's callers write them (lowercase
 * names: "topic", "prefixed", "read", "allow") and their wire form in
 * DescribeAcls, CreateAcls and DeleteAcls.
 */
import {
  type AclBinding,
  aclBindingCodes,
  aclCode,
  aclCodeName,
  AclOperationCode,
  type AclOperationName,
  type AclPatternType,
  AclPatternTypeCode,
  type AclPermission,
  AclPermissionCode,
  type AclResourceType,
  AclResourceTypeCode,
} from "../protocol/mod.ts";

/**
 * Which ACLs to list or delete; an absent (or undefined) field matches
 * every value.
 * patternType "match" selects the ACLs that apply to the named resource:
 * its literal ones, the wildcard and the prefixes of its name.
 */
export interface AclFilter {
  resourceType?: AclResourceType | undefined;
  patternType?: AclPatternType | "match" | undefined;
  resourceName?: string | undefined;
  principal?: string | undefined;
  host?: string | undefined;
  operation?: AclOperationName | undefined;
  permission?: AclPermission | undefined;
}

/** A binding as CreateAcls carries it. */
export function aclCreation(acl: AclBinding) {
  const { patternType, ...codes } = aclBindingCodes(acl);
  return { ...codes, resourcePatternType: patternType };
}

export function aclFilterToWire(filter: AclFilter) {
  const codeOr = (table: Readonly<Record<string, number>>, name?: string) =>
    aclCode(table, name ?? "any");
  return {
    resourceTypeFilter: codeOr(AclResourceTypeCode, filter.resourceType),
    resourceNameFilter: filter.resourceName ?? null,
    patternTypeFilter: codeOr(AclPatternTypeCode, filter.patternType),
    principalFilter: filter.principal ?? null,
    hostFilter: filter.host ?? null,
    operation: codeOr(AclOperationCode, filter.operation),
    permissionType: codeOr(AclPermissionCode, filter.permission),
  };
}

/** The binding a broker described, its codes turned back into names. */
export function aclFromWire(
  wire: ReturnType<typeof aclBindingCodes>,
): AclBinding {
  const name = <T extends string>(
    table: Readonly<Record<string, number>>,
    code: number,
  ) => (aclCodeName(table, code) ?? "unknown").toLowerCase() as T;
  return {
    resourceType: name(AclResourceTypeCode, wire.resourceType),
    patternType: name(AclPatternTypeCode, wire.patternType),
    resourceName: wire.resourceName,
    principal: wire.principal,
    host: wire.host,
    operation: name(AclOperationCode, wire.operation),
    permission: name(AclPermissionCode, wire.permissionType),
  };
}
