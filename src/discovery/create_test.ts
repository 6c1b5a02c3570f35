/**
 * createDiscovery: picks the implementation that discovery.type names, and
 * refuses settings it cannot work with before anything starts.
 */
import assert from "node:assert/strict";
import {
  createDiscovery,
  type DiscoveryConfig,
  MemoryDiscovery,
} from "./mod.ts";

const base: DiscoveryConfig = {
  type: "memory",
  endpoints: [],
  username: "",
  password: "",
  timeoutMs: 1_000,
  prefix: "/raftq",
  peers: [],
};

Deno.test("createDiscovery makes a MemoryDiscovery for type memory", async () => {
  const d = createDiscovery(base);
  assert.ok(d instanceof MemoryDiscovery);
  await d.close();
});

Deno.test("createDiscovery rejects etcd discovery without endpoints", () => {
  assert.throws(
    () => createDiscovery({ ...base, type: "etcd" }),
    (err: Error) =>
      err instanceof TypeError && /discovery\.endpoints/.test(err.message),
  );
});

Deno.test("createDiscovery rejects a lease TTL under one second", () => {
  assert.throws(
    () =>
      createDiscovery({ ...base, type: "etcd", endpoints: ["127.0.0.1:1"] }, {
        leaseTtlSeconds: 0,
      }),
    (err: Error) =>
      err instanceof RangeError && /leaseTtlSeconds/.test(err.message),
  );
});
