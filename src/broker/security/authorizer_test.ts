/**
 * Goal: Authorizer answers as Kafka's authorizer does. Method: a table of
 * bindings and questions per rule (deny wins, wildcards, prefixes, implied
 * operations, super users, authorization off), each on a fresh authorizer.
 */
import assert from "node:assert/strict";
import type { AclBinding } from "../controller/mod.ts";
import { ANONYMOUS, Authorizer, principalOf } from "./authorizer.ts";
import { newSession } from "./session.ts";

const ALICE = { principal: "User:alice", host: "10.0.0.1" };
const BOB = { principal: "User:bob", host: "10.0.0.2" };

function acl(fields: Partial<AclBinding>): AclBinding {
  return {
    resourceType: "topic",
    patternType: "literal",
    resourceName: "orders",
    principal: "User:alice",
    host: "*",
    operation: "write",
    permission: "allow",
    ...fields,
  };
}

function authorizer(
  bindings: AclBinding[],
  options: { enabled?: boolean; superUsers?: string[] } = {},
): Authorizer {
  return new Authorizer({
    enabled: options.enabled ?? true,
    superUsers: options.superUsers ?? [],
    bindings: () => bindings,
  });
}

const topic = (name: string, operation: "read" | "write" | "describe") => ({
  type: "topic" as const,
  name,
  operation,
});

Deno.test("Authorizer denies what no binding allows, and allows what one does", () => {
  const a = authorizer([acl({})]);
  assert.equal(a.authorize(ALICE, topic("orders", "write")), true);
  assert.equal(a.authorize(ALICE, topic("orders", "read")), false);
  assert.equal(a.authorize(ALICE, topic("payments", "write")), false);
  assert.equal(a.authorize(BOB, topic("orders", "write")), false);
});

Deno.test("Authorizer lets a DENY win over an ALLOW, DENY ALL included", () => {
  const a = authorizer([acl({}), acl({ permission: "deny" })]);
  assert.equal(a.authorize(ALICE, topic("orders", "write")), false);
  const all = authorizer([
    acl({ operation: "all" }),
    acl({ operation: "all", permission: "deny", principal: "User:*" }),
  ]);
  assert.equal(all.authorize(ALICE, topic("orders", "read")), false);
});

Deno.test("Authorizer matches the wildcard resource, principal and host", () => {
  const a = authorizer([
    acl({ resourceName: "*", principal: "User:*", operation: "read" }),
  ]);
  assert.equal(a.authorize(BOB, topic("anything", "read")), true);
  const byHost = authorizer([acl({ host: "10.0.0.1" })]);
  assert.equal(byHost.authorize(ALICE, topic("orders", "write")), true);
  assert.equal(
    byHost.authorize({ ...ALICE, host: "10.0.0.9" }, topic("orders", "write")),
    false,
  );
});

Deno.test("Authorizer matches a prefixed pattern by name prefix only", () => {
  const a = authorizer([acl({ patternType: "prefixed", resourceName: "ord" })]);
  assert.equal(a.authorize(ALICE, topic("orders", "write")), true);
  assert.equal(a.authorize(ALICE, topic("or", "write")), false);
  assert.equal(a.authorize(ALICE, topic("xorders", "write")), false);
});

Deno.test("Authorizer implies DESCRIBE from READ/WRITE/DELETE/ALTER and DESCRIBE_CONFIGS from ALTER_CONFIGS, for ALLOW only", () => {
  for (const operation of ["read", "write", "delete", "alter"] as const) {
    const a = authorizer([acl({ operation })]);
    assert.equal(a.authorize(ALICE, topic("orders", "describe")), true);
  }
  const configs = authorizer([acl({ operation: "alter_configs" })]);
  assert.equal(
    configs.authorize(ALICE, {
      type: "topic",
      name: "orders",
      operation: "describe_configs",
    }),
    true,
  );
  const denyRead = authorizer([
    acl({ operation: "describe" }),
    acl({ operation: "read", permission: "deny" }),
  ]);
  assert.equal(denyRead.authorize(ALICE, topic("orders", "describe")), true);
});

Deno.test("Authorizer allows super users and everyone when authorization is off", () => {
  const a = authorizer([acl({ permission: "deny", principal: "User:*" })], {
    superUsers: ["User:admin"],
  });
  const admin = { principal: "User:admin", host: "10.0.0.3" };
  assert.equal(a.authorize(admin, topic("orders", "write")), true);
  assert.equal(a.authorize(ALICE, topic("orders", "write")), false);
  const off = authorizer([], { enabled: false });
  assert.equal(off.authorize(ALICE, topic("orders", "write")), true);
});

Deno.test("Authorizer.authorizeAny finds an allowed resource of the type unless a DENY covers it", () => {
  const write = { type: "topic" as const, operation: "write" as const };
  assert.equal(authorizer([]).authorizeAny(ALICE, write), false);
  assert.equal(authorizer([acl({})]).authorizeAny(ALICE, write), true);
  const deniedExact = authorizer([acl({}), acl({ permission: "deny" })]);
  assert.equal(deniedExact.authorizeAny(ALICE, write), false);
  const deniedByPrefix = authorizer([
    acl({ patternType: "prefixed", resourceName: "ord-" }),
    acl({ patternType: "prefixed", resourceName: "ord", permission: "deny" }),
  ]);
  assert.equal(deniedByPrefix.authorizeAny(ALICE, write), false);
  const partlyDenied = authorizer([
    acl({ patternType: "prefixed", resourceName: "ord" }),
    acl({ resourceName: "orders", permission: "deny" }),
  ]);
  assert.equal(partlyDenied.authorizeAny(ALICE, write), true);
});

Deno.test("Authorizer re-reads the bindings when a new array comes", () => {
  let bindings: AclBinding[] = [];
  const a = new Authorizer({
    enabled: true,
    superUsers: [],
    bindings: () => bindings,
  });
  assert.equal(a.authorize(ALICE, topic("orders", "write")), false);
  bindings = [acl({})];
  assert.equal(a.authorize(ALICE, topic("orders", "write")), true);
});

Deno.test("principalOf names an unauthenticated client User:ANONYMOUS", () => {
  const session = newSession("127.0.0.1");
  assert.equal(principalOf(session), ANONYMOUS);
  session.principal = "User:alice";
  assert.equal(principalOf(session), "User:alice");
});
