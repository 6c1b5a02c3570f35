/**
 * raftq acl create|list|delete, with kafka-acls.sh's flags: one resource
 * (--topic, --group, --cluster or --transactional-id), principals to allow
 * or deny, their hosts and the operations. Operations are accepted as
 * Kafka writes them (Read, IdempotentWrite) or as raftq lists them
 * (read, idempotent_write).
 */
import type { AclFilter } from "../client/mod.ts";
import {
  ACL_OPERATIONS,
  type AclBinding,
  type AclOperationName,
  type AclPatternType,
  type AclPermission,
  type AclResourceType,
  CLUSTER_RESOURCE_NAME,
} from "../protocol/mod.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";
import { type CliIo, CommandError } from "./io.ts";
import { formatTable } from "./table.ts";

export interface AclResourceOptions {
  topic?: string;
  group?: string;
  cluster?: boolean;
  transactionalId?: string;
}

export interface AclPrincipalOptions {
  allowPrincipal: string[];
  denyPrincipal: string[];
  allowHost: string[];
  denyHost: string[];
  operation: string[];
}

export interface AclCreateOptions
  extends ClientCommandOptions, AclResourceOptions, AclPrincipalOptions {
  resourcePatternType: AclPatternType;
}

export interface AclFilterOptions
  extends ClientCommandOptions, AclResourceOptions, AclPrincipalOptions {
  resourcePatternType?: AclPatternType | "match" | "any";
  principal?: string;
}

/** "Read", "IdempotentWrite", "idempotent-write": one spelling-free key each. */
const squash = (name: string) => name.toLowerCase().replace(/[-_]/g, "");

function operationOf(name: string): AclOperationName {
  const found = ACL_OPERATIONS.find((op) => squash(op) === squash(name));
  if (found === undefined) {
    throw new CommandError(
      `Unknown --operation "${name}": use one of ${ACL_OPERATIONS.join(", ")}`,
    );
  }
  return found;
}

function resourceOf(
  opts: AclResourceOptions,
): { type: AclResourceType; name: string } | undefined {
  const given: { type: AclResourceType; name: string }[] = [];
  if (opts.topic !== undefined) given.push({ type: "topic", name: opts.topic });
  if (opts.group !== undefined) given.push({ type: "group", name: opts.group });
  if (opts.cluster === true) {
    given.push({ type: "cluster", name: CLUSTER_RESOURCE_NAME });
  }
  if (opts.transactionalId !== undefined) {
    given.push({ type: "transactional_id", name: opts.transactionalId });
  }
  if (given.length > 1) {
    throw new CommandError(
      "Give one resource: --topic, --group, --cluster or --transactional-id",
    );
  }
  return given[0];
}

function requiredResource(
  opts: AclResourceOptions,
): { type: AclResourceType; name: string } {
  const resource = resourceOf(opts);
  if (resource === undefined) {
    throw new CommandError(
      "Name the resource: --topic, --group, --cluster or --transactional-id",
    );
  }
  return resource;
}

/**
 * Each (permission, principal, host, operation) the flags name; host and
 * operation are undefined where no flag names one.
 */
function grants(opts: AclPrincipalOptions, defaultOperation?: "all") {
  const operations = opts.operation.length > 0
    ? opts.operation.map(operationOf)
    : defaultOperation === undefined
    ? [undefined]
    : [defaultOperation];
  const sides: [AclPermission, string[], string[]][] = [
    ["allow", opts.allowPrincipal, opts.allowHost],
    ["deny", opts.denyPrincipal, opts.denyHost],
  ];
  return sides.flatMap(([permission, principals, hosts]) =>
    principals.flatMap((principal) =>
      (hosts.length > 0 ? hosts : [undefined]).flatMap((host) =>
        operations.map((operation) => ({
          permission,
          principal,
          host,
          operation,
        }))
      )
    )
  );
}

function printAcls(io: CliIo, acls: readonly AclBinding[]): void {
  io.stdout(formatTable(
    [
      "RESOURCE TYPE",
      "PATTERN",
      "NAME",
      "PRINCIPAL",
      "HOST",
      "OPERATION",
      "PERMISSION",
    ],
    acls.map((a) => [
      a.resourceType,
      a.patternType,
      a.resourceName,
      a.principal,
      a.host,
      a.operation,
      a.permission,
    ]),
  ));
}

export async function createAcls(
  io: CliIo,
  opts: AclCreateOptions,
): Promise<void> {
  const resource = requiredResource(opts);
  const acls: AclBinding[] = grants(opts, "all").map((g) => ({
    resourceType: resource.type,
    patternType: opts.resourcePatternType,
    resourceName: resource.name,
    principal: g.principal,
    host: g.host ?? "*",
    operation: g.operation!,
    permission: g.permission,
  }));
  if (acls.length === 0) {
    throw new CommandError(
      "Name who the ACL is for: --allow-principal or --deny-principal (e.g. User:alice)",
    );
  }
  await withClient(opts, (client) => client.createAcls(acls));
  io.stdout(`Created ${acls.length} ACL(s)\n`);
  printAcls(io, acls);
}

function resourceFilter(
  opts: AclFilterOptions,
  resource: { type: AclResourceType; name: string } | undefined,
): AclFilter {
  return {
    resourceType: resource?.type,
    resourceName: resource?.name,
    patternType: opts.resourcePatternType === "any"
      ? undefined
      : opts.resourcePatternType,
  };
}

export async function listAcls(
  io: CliIo,
  opts: AclFilterOptions,
): Promise<void> {
  const filter = {
    ...resourceFilter(opts, resourceOf(opts)),
    principal: opts.principal,
  };
  const acls = await withClient(opts, (client) => client.describeAcls(filter));
  printAcls(io, acls);
}

/**
 * Deletes the resource's ACLs, only those of the principals and
 * operations named when some are.
 */
export async function deleteAcls(
  io: CliIo,
  opts: AclFilterOptions,
): Promise<void> {
  const base = resourceFilter(opts, requiredResource(opts));
  const named = grants(opts);
  if (named.length === 0 && opts.operation.length > 0) {
    throw new CommandError(
      "--operation narrows --allow-principal or --deny-principal: name one",
    );
  }
  const filters: AclFilter[] = named.length === 0
    ? [base]
    : named.map((g) => ({ ...base, ...g }));
  const deleted = await withClient(
    opts,
    (client) => client.deleteAcls(filters),
  );
  io.stdout(`Deleted ${deleted.length} ACL(s)\n`);
  printAcls(io, deleted);
}
