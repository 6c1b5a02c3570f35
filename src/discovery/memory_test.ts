/**
 * Memory discovery: the shared conformance suite, plus what is particular to
 * it (one registry per process unless shared, synchronous delivery).
 */
import assert from "node:assert/strict";
import { brokerInfo, discoveryConformance, EventLog } from "./conformance.ts";
import { MemoryDiscovery, MemoryRegistry } from "./mod.ts";

discoveryConformance("MemoryDiscovery", () =>
  Promise.resolve({
    namespace: () => {
      const registry = new MemoryRegistry();
      return () => new MemoryDiscovery({ registry });
    },
    close: () => Promise.resolve(),
  }));

Deno.test("MemoryDiscovery does not see brokers of another registry", async () => {
  const first = new MemoryDiscovery();
  const second = new MemoryDiscovery();
  await first.register(brokerInfo(1));
  await second.register(brokerInfo(2));
  assert.deepEqual((await first.list()).map((b) => b.nodeId), [1]);
  await first.close();
  await second.close();
});

Deno.test("MemoryDiscovery.close of a stale holder keeps the new holder of its id", async () => {
  const registry = new MemoryRegistry();
  const stale = new MemoryDiscovery({ registry });
  const fresh = new MemoryDiscovery({ registry });
  await stale.register(brokerInfo(1, { startedAtMs: 1 }));
  await fresh.register(brokerInfo(1, { startedAtMs: 2 }));
  await stale.close();
  assert.deepEqual(await fresh.list(), [brokerInfo(1, { startedAtMs: 2 })]);
  await fresh.close();
});

Deno.test("MemoryDiscovery delivers to the other listeners when one throws", async () => {
  const logged: string[] = [];
  const d = new MemoryDiscovery({ log: (msg) => logged.push(msg) });
  d.watch(() => {
    throw new Error("listener bug");
  });
  const log = new EventLog(d);
  await d.register(brokerInfo(1));
  assert.equal(log.events.length, 1);
  assert.match(logged.join("\n"), /listener bug/);
  await d.close();
});

Deno.test("MemoryDiscovery.list returns copies the caller cannot corrupt", async () => {
  const d = new MemoryDiscovery();
  await d.register(brokerInfo(1));
  const [listed] = await d.list();
  listed!.status = "draining";
  assert.equal((await d.list())[0]!.status, "online");
  await d.close();
});
