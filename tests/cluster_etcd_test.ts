// A cluster found through a real etcd: three broker processes register with
// leases, found the controller group from etcd alone, replicate a topic,
// and a broker killed with SIGKILL drops out of etcd when its lease ends.
import assert from "node:assert/strict";
import { createDiscovery } from "../src/discovery/mod.ts";
import {
  etcdAvailable,
  EtcdServer,
} from "../src/discovery/testing/etcd_server.ts";
import { freePorts, waitFor } from "./cluster_harness.ts";
import {
  type BrokerProcess,
  hasKcat,
  kcatProduce,
  kcatValues,
  removeDir,
  run,
  startBroker,
} from "./harness.ts";

Deno.test({
  name:
    "brokers found a cluster through etcd, a killed one leaves it and rejoins while etcd is down",
  ignore: !etcdAvailable() || !hasKcat,
  async fn() {
    const etcd = await EtcdServer.start();
    const raftPorts = freePorts(3);
    const brokers: BrokerProcess[] = [];
    const watcher = createDiscovery({
      type: "etcd",
      endpoints: [etcd.endpoint],
      username: "",
      password: "",
      timeoutMs: 5_000,
      prefix: "/raftq",
      peers: [],
    });
    try {
      brokers.push(
        ...await Promise.all(raftPorts.map((raftPort, i) =>
          startBroker({
            set: [
              `node_id=${i + 1}`,
              `raft_port=${raftPort}`,
              "discovery.type=etcd",
              `discovery.endpoints=${etcd.endpoint}`,
              "topics.default_replication_factor=3",
            ],
          })
        )),
      );
      const [b1, b2, b3] = brokers as [
        BrokerProcess,
        BrokerProcess,
        BrokerProcess,
      ];
      await waitFor(
        "three registered brokers in etcd",
        async () => (await watcher.list()).length === 3 || undefined,
      );
      await waitFor("a controller that knows all three brokers", async () => {
        const md = await run("kcat", ["-b", b2.bootstrap, "-L", "-J"]);
        const parsed = JSON.parse(new TextDecoder().decode(md.stdout));
        return (parsed.brokers.length === 3 && parsed.controllerid > 0) ||
          undefined;
      });
      const values = Array.from({ length: 300 }, (_, i) => `etcd-${i}`);
      await kcatProduce(b1.bootstrap, "found", values, ["-X", "acks=all"]);
      assert.deepEqual(
        (await kcatValues(b3.bootstrap, "found")).sort(),
        [...values].sort(),
      );

      await b3.kill9();
      // Its lease (10 s) runs out without keep-alives: the key goes away.
      await waitFor("broker 3's registration to expire", async () => {
        const ids = (await watcher.list()).map((b) => b.nodeId);
        return !ids.includes(3) || undefined;
      }, { timeoutMs: 25_000 });
      assert.equal(
        (await kcatValues(b1.bootstrap, "found")).length,
        values.length,
        "the two remaining brokers still serve every message",
      );

      // With etcd gone, broker 3 comes back from its own state: its peers'
      // addresses are in the controller state its WAL restores.
      await etcd.stop();
      const b3again = await startBroker({
        dataDir: b3.dataDir,
        port: b3.port,
        set: [
          "node_id=3",
          `raft_port=${raftPorts[2]}`,
          "discovery.type=etcd",
          `discovery.endpoints=${etcd.endpoint}`,
          "discovery.timeout=1s",
        ],
      });
      brokers[2] = b3again;
      const more = Array.from({ length: 50 }, (_, i) => `later-${i}`);
      await kcatProduce(b1.bootstrap, "found", more, ["-X", "acks=all"]);
      const segment = (dir: string) =>
        Deno.readFileSync(`${dir}/found-0/00000000000000000000.log`);
      await waitFor("broker 3 to catch up without etcd", () =>
        Promise.resolve(
          segment(b3again.dataDir).length === segment(b1.dataDir).length ||
            undefined,
        ), { timeoutMs: 30_000 });
    } finally {
      await watcher.close();
      for (const b of brokers) {
        await b.stop();
        await removeDir(b.dataDir);
      }
      await etcd.close();
    }
  },
});
