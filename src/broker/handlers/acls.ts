/**
 * DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), v0-3 (KIP-140,
 * KIP-290 for prefixed patterns): ACL bindings in the controller state.
 * Describing needs DESCRIBE on the cluster, changing needs ALTER. ACLs can
 * be managed while authorization.enabled is off, so they can be in place
 * before it is turned on (Kafka would answer SECURITY_DISABLED).
 */
import {
  aclBindingCodes,
  aclCodeName,
  AclOperationCode,
  AclPatternTypeCode,
  AclPermissionCode,
  AclResourceTypeCode,
  type CreateAclsRequest,
  type CreateAclsResponseInput,
  type DeleteAclsRequest,
  type DeleteAclsResponseInput,
  type DescribeAclsRequest,
  type DescribeAclsResponseInput,
  ErrorCode,
} from "../../protocol/mod.ts";
import {
  ACL_OPERATIONS,
  ACL_PATTERN_TYPES,
  ACL_PERMISSIONS,
  ACL_RESOURCE_TYPES,
  type AclBinding,
  aclBindingProblem,
  type AclOperationName,
  type AclPatternType,
  type AclPermission,
  type AclResourceType,
} from "../controller/mod.ts";
import type { PartitionOutcome } from "../ports.ts";
import { namesMatch } from "../security/authorizer.ts";
import { allowsOnCluster, clusterRefusal } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

type CodeTable = Readonly<Record<string, number>>;

/** The binding's name of a wire code, if it is one of `names`. */
function nameOf<T extends string>(
  table: CodeTable,
  names: readonly T[],
  code: number,
): T | undefined {
  const name = aclCodeName(table, code)?.toLowerCase();
  return names.find((n) => n === name);
}

interface Refusal {
  errorCode: number;
  errorMessage: string;
}

function invalid(errorMessage: string): Refusal {
  return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage };
}

function bindingOf(
  c: CreateAclsRequest["creations"][number],
): AclBinding | Refusal {
  const resourceType = nameOf(
    AclResourceTypeCode,
    ACL_RESOURCE_TYPES,
    c.resourceType,
  );
  const patternType = nameOf(
    AclPatternTypeCode,
    ACL_PATTERN_TYPES,
    c.resourcePatternType,
  );
  const operation = nameOf(AclOperationCode, ACL_OPERATIONS, c.operation);
  const permission = nameOf(
    AclPermissionCode,
    ACL_PERMISSIONS,
    c.permissionType,
  );
  if (resourceType === undefined) {
    return invalid(
      `Resource type ${c.resourceType} cannot carry ACLs here: use topic (2), group (3), cluster (4) or transactional id (5)`,
    );
  }
  if (patternType === undefined) {
    return invalid(
      `Pattern type ${c.resourcePatternType} is invalid: use literal (3) or prefixed (4)`,
    );
  }
  if (operation === undefined) {
    return invalid(`Operation ${c.operation} is invalid: use 2 (ALL) to 12`);
  }
  if (permission === undefined) {
    return invalid(
      `Permission type ${c.permissionType} is invalid: use deny (2) or allow (3)`,
    );
  }
  const binding: AclBinding = {
    resourceType,
    patternType,
    resourceName: c.resourceName,
    principal: c.principal,
    host: c.host,
    operation,
    permission,
  };
  const problem = aclBindingProblem(binding);
  return problem === null ? binding : invalid(`ACL is invalid: ${problem}`);
}

/** Kafka's AclBindingFilter: null strings and ANY match everything. */
interface AclFilter {
  resourceType: AclResourceType | "any";
  /** match: the bindings that apply to the named resource. */
  patternType: AclPatternType | "any" | "match";
  resourceName: string | null;
  principal: string | null;
  host: string | null;
  operation: AclOperationName | "any";
  permission: AclPermission | "any";
}

type WireFilter = DescribeAclsRequest;

function filterOf(f: WireFilter): AclFilter | Refusal {
  const resourceType = nameOf(
    AclResourceTypeCode,
    [...ACL_RESOURCE_TYPES, "any"],
    f.resourceTypeFilter,
  );
  const patternType = nameOf(
    AclPatternTypeCode,
    [...ACL_PATTERN_TYPES, "any", "match"],
    f.patternTypeFilter,
  );
  const operation = nameOf(
    AclOperationCode,
    [...ACL_OPERATIONS, "any"],
    f.operation,
  );
  const permission = nameOf(
    AclPermissionCode,
    [...ACL_PERMISSIONS, "any"],
    f.permissionType,
  );
  if (
    resourceType === undefined || patternType === undefined ||
    operation === undefined || permission === undefined
  ) {
    return invalid(
      `ACL filter (resource type ${f.resourceTypeFilter}, pattern type ${f.patternTypeFilter}, operation ${f.operation}, permission ${f.permissionType}) holds an unknown value`,
    );
  }
  return {
    resourceType,
    patternType,
    resourceName: f.resourceNameFilter,
    principal: f.principalFilter,
    host: f.hostFilter,
    operation,
    permission,
  };
}

function resourceMatches(f: AclFilter, b: AclBinding): boolean {
  if (f.resourceType !== "any" && f.resourceType !== b.resourceType) {
    return false;
  }
  const name = f.resourceName;
  switch (f.patternType) {
    case "any":
      return name === null || name === b.resourceName;
    case "match":
      return name === null || namesMatch(b, name);
    default:
      return f.patternType === b.patternType &&
        (name === null || name === b.resourceName);
  }
}

export function filterMatches(f: AclFilter, b: AclBinding): boolean {
  return resourceMatches(f, b) &&
    (f.principal === null || f.principal === b.principal) &&
    (f.host === null || f.host === b.host) &&
    (f.operation === "any" || f.operation === b.operation) &&
    (f.permission === "any" || f.permission === b.permission);
}

/**
 * Proposes an ACL change (nothing to propose is a success) and logs who
 * made it once it is applied.
 */
async function changeAcls(
  ctx: BrokerContext,
  request: RequestInfo,
  change: {
    verb: "created" | "deleted";
    bindings: AclBinding[];
    propose: (bindings: AclBinding[]) => Promise<PartitionOutcome>;
  },
): Promise<{ errorCode: number; errorMessage: string | null }> {
  const { bindings } = change;
  if (bindings.length === 0) {
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  }
  const outcome = await change.propose(bindings);
  if (outcome.errorCode === ErrorCode.NONE) {
    ctx.log(
      `${bindings.length} ACL(s) ${change.verb} by ${
        request.session.principal ?? request.clientHost
      }`,
    );
  }
  return {
    errorCode: outcome.errorCode,
    errorMessage: outcome.errorMessage ?? null,
  };
}

export function handleDescribeAcls(
  ctx: BrokerContext,
  req: DescribeAclsRequest,
  request: RequestInfo,
): DescribeAclsResponseInput {
  const refused = (refusal: Refusal): DescribeAclsResponseInput => ({
    throttleTimeMs: 0,
    ...refusal,
    resources: [],
  });
  if (!allowsOnCluster(ctx, request, "describe")) {
    return refused({
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: clusterRefusal("describe"),
    });
  }
  const filter = filterOf(req);
  if ("errorCode" in filter) return refused(filter);
  const resources = new Map<
    string,
    DescribeAclsResponseInput["resources"][number]
  >();
  for (const b of ctx.cluster.acls()) {
    if (!filterMatches(filter, b)) continue;
    const wire = aclBindingCodes(b);
    const key = JSON.stringify([b.resourceType, b.patternType, b.resourceName]);
    let resource = resources.get(key);
    if (resource === undefined) {
      resource = {
        resourceType: wire.resourceType,
        resourceName: wire.resourceName,
        patternType: wire.patternType,
        acls: [],
      };
      resources.set(key, resource);
    }
    resource.acls.push({
      principal: wire.principal,
      host: wire.host,
      operation: wire.operation,
      permissionType: wire.permissionType,
    });
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    resources: [...resources.values()],
  };
}

export async function handleCreateAcls(
  ctx: BrokerContext,
  req: CreateAclsRequest,
  request: RequestInfo,
): Promise<CreateAclsResponseInput> {
  if (!allowsOnCluster(ctx, request, "alter")) {
    return {
      throttleTimeMs: 0,
      results: req.creations.map(() => ({
        errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: clusterRefusal("alter"),
      })),
    };
  }
  const parsed = req.creations.map(bindingOf);
  const bindings = parsed.filter((b): b is AclBinding => !("errorCode" in b));
  const outcome = await changeAcls(ctx, request, {
    verb: "created",
    bindings,
    propose: (b) => ctx.cluster.createAcls(b),
  });
  return {
    throttleTimeMs: 0,
    results: parsed.map((b) => "errorCode" in b ? b : outcome),
  };
}

export async function handleDeleteAcls(
  ctx: BrokerContext,
  req: DeleteAclsRequest,
  request: RequestInfo,
): Promise<DeleteAclsResponseInput> {
  if (!allowsOnCluster(ctx, request, "alter")) {
    return {
      throttleTimeMs: 0,
      filterResults: req.filters.map(() => ({
        errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: clusterRefusal("alter"),
        matchingAcls: [],
      })),
    };
  }
  const present = ctx.cluster.acls();
  const filters = req.filters.map(filterOf);
  const matches = filters.map((f) =>
    "errorCode" in f ? [] : present.filter((b) => filterMatches(f, b))
  );
  const outcome = await changeAcls(ctx, request, {
    verb: "deleted",
    bindings: [...new Set(matches.flat())],
    propose: (b) => ctx.cluster.deleteAcls(b),
  });
  return {
    throttleTimeMs: 0,
    filterResults: filters.map((f, i) =>
      "errorCode" in f ? { ...f, matchingAcls: [] } : {
        ...outcome,
        matchingAcls: matches[i]!.map((b) => ({
          ...outcome,
          ...aclBindingCodes(b),
        })),
      }
    ),
  };
}
