/**
 * etcd discovery against a real etcd 3.4 (/usr/bin/etcd) on loopback: the
 * shared conformance suite, then what only etcd has: lease expiry of a
 * killed broker, revocation on close, riding out an etcd outage, and a
 * founding record that outlives its claimer.
 */
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import {
  brokerInfo,
  discoveryConformance,
  EventLog,
  isDown,
  isUp,
} from "./conformance.ts";
import {
  type DiscoveryConfig,
  DiscoveryUnavailableError,
  EtcdDiscovery,
} from "./mod.ts";
import { etcdAvailable, EtcdServer } from "./testing/etcd_server.ts";

const ignore = !etcdAvailable();
if (ignore) {
  console.warn("Skipping etcd discovery tests: /usr/bin/etcd is missing");
}

let prefixSeq = 0;
function config(server: EtcdServer): DiscoveryConfig {
  return {
    type: "etcd",
    endpoints: [server.endpoint],
    username: "",
    password: "",
    timeoutMs: 2_000,
    prefix: `/raftq-test-${++prefixSeq}`,
    peers: [],
  };
}

class Logs {
  readonly lines: string[] = [];
  readonly log = (msg: string) => {
    this.lines.push(msg);
  };

  async waitFor(pattern: RegExp, opts: { after: number; timeoutMs: number }) {
    const deadline = Date.now() + opts.timeoutMs;
    while (Date.now() < deadline) {
      if (this.lines.slice(opts.after).some((l) => pattern.test(l))) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`No log line matching ${pattern}; got ${this.lines}`);
  }
}

discoveryConformance("EtcdDiscovery", async () => {
  const server = await EtcdServer.start();
  return {
    namespace: () => {
      const shared = config(server);
      return () => new EtcdDiscovery(shared, { log: () => {} });
    },
    close: () => server.close(),
  };
}, { ignore });

Deno.test({
  name: "EtcdDiscovery drops a SIGKILLed broker once its lease TTL runs out",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const observer = new EtcdDiscovery(shared, { log: () => {} });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./testing/crash_child.ts", import.meta.url).pathname,
        server.endpoint,
        shared.prefix,
        "7",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const events = new EventLog(observer);
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      const first = await reader.read();
      assert.match(first.value ?? "", /registered/);
      await events.waitFor("up of node 7", isUp(7));
      const killedAtMs = Date.now();
      child.kill("SIGKILL");
      await events.waitFor("down of node 7", isDown(7), 8_000);
      // A 2 s lease kept alive every 2/3 s has at least ~1.3 s left.
      assert.ok(
        Date.now() - killedAtMs >= 1_000,
        "node 7 vanished at once: its lease was revoked, not expired",
      );
      assert.deepEqual(await observer.list(), []);
      await reader.cancel();
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already killed by the test itself.
      }
      await child.status;
      await observer.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "EtcdDiscovery.close revokes the lease so the key vanishes at once",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const observer = new EtcdDiscovery(shared, { log: () => {} });
    const leaving = new EtcdDiscovery(shared, {
      log: () => {},
      leaseTtlSeconds: 30,
    });
    try {
      const events = new EventLog(observer);
      await leaving.register(brokerInfo(3));
      await events.waitFor("up of node 3", isUp(3));
      await leaving.close();
      await events.waitFor("down of node 3", isDown(3), 2_000);
    } finally {
      await leaving.close();
      await observer.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery serves list from cache while etcd is down and re-registers when it is back",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const logs = new Logs();
    const one = new EtcdDiscovery(shared, { log: logs.log });
    const two = new EtcdDiscovery(shared, { log: () => {} });
    let third: EtcdDiscovery | undefined;
    try {
      await one.register(brokerInfo(1));
      await two.register(brokerInfo(2));
      const events = new EventLog(one);
      if ((await one.list()).length < 2) {
        await events.waitFor("up of node 2", isUp(2));
      }
      await logs.waitFor(/connected to etcd/, { after: 0, timeoutMs: 5_000 });

      await server.stop();
      await logs.waitFor(/unreachable/, { after: 0, timeoutMs: 5_000 });
      const outage = logs.lines.length;
      assert.deepEqual(
        (await one.list()).map((b) => b.nodeId),
        [1, 2],
      );
      // Once per state change: retries while down do not log again.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(logs.lines.length, outage);

      // etcd comes back empty, so the keys exist only if re-registered.
      await server.restart({ freshData: true });
      await logs.waitFor(/connected to etcd/, {
        after: outage,
        timeoutMs: 10_000,
      });
      third = new EtcdDiscovery(shared, { log: () => {} });
      const seen = new EventLog(third);
      await seen.waitFor("up of node 1", isUp(1));
      await seen.waitFor("up of node 2", isUp(2));
    } finally {
      await third?.close();
      await one.close();
      await two.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery.register returns while etcd is down and registers once it is up",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    await server.stop();
    const shared = { ...config(server), timeoutMs: 500 };
    const logs = new Logs();
    const early = new EtcdDiscovery(shared, { log: logs.log });
    let observer: EtcdDiscovery | undefined;
    try {
      await early.register(brokerInfo(4));
      await logs.waitFor(/unreachable/, { after: 0, timeoutMs: 2_000 });
      await server.restart({ freshData: false });
      observer = new EtcdDiscovery(shared, { log: () => {} });
      await new EventLog(observer).waitFor("up of node 4", isUp(4));
    } finally {
      await observer?.close();
      await early.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "EtcdDiscovery skips and logs an entry that is not a BrokerInfo",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const raw = new Etcd3({ hosts: server.endpoint });
    const logs = new Logs();
    const d = new EtcdDiscovery(shared, { log: logs.log });
    try {
      const events = new EventLog(d);
      await raw.put(`${shared.prefix}/brokers/5`).value('{"nodeId":5}');
      await raw.put(`${shared.prefix}/brokers/6`).value(
        JSON.stringify(brokerInfo(6)),
      );
      await events.waitFor("up of node 6", isUp(6));
      assert.deepEqual((await d.list()).map((b) => b.nodeId), [6]);
      assert.match(logs.lines.join("\n"), /brokers\/5: bad host/);
    } finally {
      await d.close();
      raw.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery.claimFounding record outlives the claimer's close and is bound to no lease",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const raw = new Etcd3({ hosts: server.endpoint });
    const claimer = new EtcdDiscovery(shared, { log: () => {} });
    const later = new EtcdDiscovery(shared, { log: () => {} });
    try {
      // Registered, so that close() revokes a lease the record must not be on.
      await claimer.register(brokerInfo(1));
      const won = { voters: [1, 2, 3], founder: 1 };
      assert.deepEqual(await claimer.claimFounding(won), won);
      await claimer.close();
      const stored = await raw.get(`${shared.prefix}/cluster/founding`).exec();
      assert.equal(stored.kvs[0]?.lease, "0");
      assert.deepEqual(JSON.parse(stored.kvs[0].value.toString()), won);
      assert.deepEqual(
        await later.claimFounding({ voters: [2], founder: 2 }),
        won,
      );
    } finally {
      await claimer.close();
      await later.close();
      raw.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery.claimFounding waits for etcd to come back within timeoutMs",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    await server.stop();
    const d = new EtcdDiscovery({ ...config(server), timeoutMs: 8_000 }, {
      log: () => {},
    });
    try {
      const proposal = { voters: [4, 5], founder: 5 };
      const claim = d.claimFounding(proposal);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server.restart({ freshData: false });
      assert.deepEqual(await claim, proposal);
    } finally {
      await d.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery.claimFounding rejects with DiscoveryUnavailableError once timeoutMs passes without etcd",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    await server.stop();
    const d = new EtcdDiscovery({ ...config(server), timeoutMs: 500 }, {
      log: () => {},
    });
    try {
      const startedMs = Date.now();
      await assert.rejects(
        d.claimFounding({ voters: [1], founder: 1 }),
        (err: Error) =>
          err instanceof DiscoveryUnavailableError &&
          /unreachable for 500 ms/.test(err.message),
      );
      const tookMs = Date.now() - startedMs;
      assert.ok(tookMs >= 450 && tookMs < 2_000, `took ${tookMs} ms`);
    } finally {
      await d.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "EtcdDiscovery.claimFounding rejects a stored value that is not a founding record with a TypeError naming the key",
  ignore,
  fn: async () => {
    const server = await EtcdServer.start();
    const shared = config(server);
    const raw = new Etcd3({ hosts: server.endpoint });
    const d = new EtcdDiscovery(shared, { log: () => {} });
    try {
      await raw.put(`${shared.prefix}/cluster/founding`).value(
        '{"voters":[1,2],"founder":7}',
      );
      await assert.rejects(
        d.claimFounding({ voters: [1], founder: 1 }),
        (err: Error) =>
          err instanceof TypeError &&
          /cluster\/founding holds no founding record: founder 7/.test(
            err.message,
          ),
      );
    } finally {
      await d.close();
      raw.close();
      await server.close();
    }
  },
});
