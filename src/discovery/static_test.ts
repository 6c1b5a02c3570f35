/**
 * Static discovery: the voter list as the config parses it (the form of
 * Kafka's controller.quorum.voters), what list() makes of it, and the only
 * events it has, those of the broker's own registration.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../config/mod.ts";
import { brokerInfo, EventLog, isDown, isUp } from "./conformance.ts";
import { createDiscovery, StaticDiscovery } from "./mod.ts";

function staticDiscovery(peers: string) {
  const config = loadConfig({
    overrides: ["discovery.type=static", `discovery.peers=${peers}`],
  });
  return createDiscovery(config.discovery, { log: () => {} });
}

Deno.test("createDiscovery lists the configured static peers by raft address", async () => {
  const d = staticDiscovery(
    "2@10.0.0.2:19092,broker-1@10.0.0.1:19091,3@[::1]:19093",
  );
  assert.ok(d instanceof StaticDiscovery);
  assert.deepEqual(await d.list(), [
    {
      nodeId: 1,
      host: "",
      kafkaPort: 0,
      raftHost: "10.0.0.1",
      raftPort: 19091,
      status: "starting",
      startedAtMs: 0,
    },
    {
      nodeId: 2,
      host: "",
      kafkaPort: 0,
      raftHost: "10.0.0.2",
      raftPort: 19092,
      status: "starting",
      startedAtMs: 0,
    },
    {
      nodeId: 3,
      host: "",
      kafkaPort: 0,
      raftHost: "::1",
      raftPort: 19093,
      status: "starting",
      startedAtMs: 0,
    },
  ]);
  await d.close();
});

Deno.test("StaticDiscovery.list shows the registered broker in place of its peer entry", async () => {
  const d = staticDiscovery("1@10.0.0.1:19091,2@10.0.0.2:19092");
  const events = new EventLog(d);
  await d.register(brokerInfo(1));
  assert.deepEqual(await d.list(), [
    brokerInfo(1),
    {
      nodeId: 2,
      host: "",
      kafkaPort: 0,
      raftHost: "10.0.0.2",
      raftPort: 19092,
      status: "starting",
      startedAtMs: 0,
    },
  ]);
  await events.waitFor("up of node 1", isUp(1));
  await d.update(brokerInfo(1, { status: "draining" }));
  assert.equal((await d.list())[0]!.status, "draining");
  await d.deregister();
  await events.waitFor("down of node 1", isDown(1));
  assert.equal((await d.list())[0]!.host, "");
  assert.deepEqual(events.events.map((e) => e.type), ["up", "up", "down"]);
  await d.close();
});

Deno.test("StaticDiscovery.list adds a registered broker missing from the peers", async () => {
  const d = staticDiscovery("2@10.0.0.2:19092");
  await d.register(brokerInfo(5));
  assert.deepEqual((await d.list()).map((b) => b.nodeId), [2, 5]);
  await d.close();
});

Deno.test("StaticDiscovery rejects a node id listed twice", () => {
  assert.throws(
    () =>
      new StaticDiscovery([
        { nodeId: 1, host: "a", port: 1 },
        { nodeId: 1, host: "b", port: 2 },
      ]),
    (err: Error) => err instanceof TypeError && /node id 1/.test(err.message),
  );
});

Deno.test("StaticDiscovery.claimFounding returns the five lowest peers led by the lowest, whatever the proposal", async () => {
  const d = staticDiscovery(
    "7@h:7,3@h:3,9@h:9,2@h:2,5@h:5,4@h:4",
  );
  const founding = { voters: [2, 3, 4, 5, 7], founder: 2 };
  assert.deepEqual(
    await d.claimFounding({ voters: [9], founder: 9 }),
    founding,
  );
  assert.deepEqual(
    await d.claimFounding({ voters: [3, 9], founder: 3 }),
    founding,
  );
  await d.close();
});

Deno.test("StaticDiscovery rejects an empty peer list", () => {
  assert.throws(
    () => new StaticDiscovery([]),
    (err: Error) => err instanceof TypeError && /empty/.test(err.message),
  );
});
