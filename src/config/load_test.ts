/**
 * loadConfig against real YAML files in a temporary directory: every kind of
 * problem, the order of precedence, and the shipped configs/broker.yaml.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  defaultConfig,
  describeConfig,
  loadConfig,
  parseDurationMs,
  parseSizeBytes,
} from "./mod.ts";

function withFile<T>(yaml: string, body: (file: string) => T): T {
  const file = Deno.makeTempFileSync({ suffix: ".yaml" });
  try {
    Deno.writeTextFileSync(file, yaml);
    return body(file);
  } finally {
    Deno.removeSync(file);
  }
}

function problemsOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("defaultConfig is a working single node with the documented defaults", () => {
  assert.deepEqual(defaultConfig(), {
    nodeId: 1,
    nodeName: "broker-1",
    bindAddr: "0.0.0.0",
    bindPort: 9092,
    advertisedHost: "localhost",
    advertisedPort: 9092,
    listeners: [{
      name: "PLAINTEXT",
      host: "0.0.0.0",
      port: 9092,
      protocol: "PLAINTEXT",
      advertisedHost: "localhost",
      advertisedPort: 9092,
      saslMechanisms: ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"],
    }],
    tls: { certFile: "", keyFile: "", clientAuth: "none", caFile: "" },
    raftPort: 19092,
    dataDir: "./data/broker-1",
    raft: {
      rttMs: 50,
      heartbeatRtt: 2,
      electionRtt: 10,
      checkQuorum: true,
      snapshotEntries: 10000,
      compactionOverhead: 5000,
      maxInMemLogSizeBytes: 16 * 2 ** 20,
      tls: { certFile: "", keyFile: "", caFile: "" },
    },
    discovery: {
      type: "memory",
      endpoints: [],
      username: "",
      password: "",
      timeoutMs: 5000,
      prefix: "/raftq",
      peers: [],
    },
    performance: {
      maxBatchSize: 500,
      maxBatchBytes: 4 * 2 ** 20,
      batchTimeoutMs: 0,
    },
    log: {
      segmentBytes: 2 ** 30,
      segmentMs: 7 * 86_400_000,
      retentionMs: 7 * 86_400_000,
      retentionBytes: -1,
      indexIntervalBytes: 4096,
      cleanerIoBytesPerSec: 50 * 2 ** 20,
      cleanerKeyMapBytes: 64 * 2 ** 20,
      cleanerBackoffMs: 15_000,
      cleanerChunkPauseMs: 0,
    },
    topics: {
      autoCreate: true,
      defaultPartitions: 1,
      defaultReplicationFactor: 1,
    },
    groups: {
      offsetsPartitions: 16,
      offsetsRetentionMs: 7 * 86_400_000,
      offsetsSegmentBytes: 100 * 1024 * 1024,
      initialRebalanceDelayMs: 3000,
    },
    transactions: {
      statePartitions: 16,
      maxTimeoutMs: 900_000,
      abortCheckIntervalMs: 10_000,
      idExpirationMs: 7 * 86_400_000,
      maxOpen: 10_000,
      maxPartitions: 10_000,
    },
    limits: {
      maxRequestBytes: 100 * 2 ** 20,
      maxConnections: 10000,
      maxInflightRequests: 100,
    },
    sasl: { maxReauthMs: 0 },
    shutdown: { timeoutMs: 10_000 },
    authorization: { enabled: false, superUsers: [] },
    admin: {
      bindAddr: "0.0.0.0",
      port: 9644,
      perPartitionMetrics: false,
      tls: false,
      auth: "none",
    },
    logging: { format: "text", level: "info" },
  });
});

Deno.test("loadConfig returns a deeply frozen object", () => {
  const config = loadConfig();
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.raft));
  assert.ok(Object.isFrozen(config.discovery.peers));
});

Deno.test("loadConfig reads the shipped configs/broker.yaml as the defaults", () => {
  const file = new URL("../../configs/broker.yaml", import.meta.url).pathname;
  assert.deepEqual(loadConfig({ file }), defaultConfig());
});

Deno.test("loadConfig treats an empty file like no file", () => {
  withFile(
    "",
    (file) => assert.deepEqual(loadConfig({ file }), defaultConfig()),
  );
  withFile(
    "raft:\n",
    (file) => assert.deepEqual(loadConfig({ file }), defaultConfig()),
  );
});

Deno.test("loadConfig rejects a missing file naming it", () => {
  const err = problemsOf(() => loadConfig({ file: "/nonexistent/raftq.yaml" }));
  assert.equal(err.problems[0]?.path, "/nonexistent/raftq.yaml");
  assert.match(err.message, /cannot read the config file/);
});

Deno.test("loadConfig reports a YAML syntax error with its line", () => {
  withFile("raft:\n  election_rtt: [1,\n", (file) => {
    const err = problemsOf(() => loadConfig({ file }));
    assert.match(err.message, /is not valid YAML: .*line/s);
  });
});

Deno.test("loadConfig suggests the nearest key for an unknown one", () => {
  withFile("raft:\n  electon_rtt: 20\n", (file) => {
    const err = problemsOf(() => loadConfig({ file }));
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]?.path, "raft.electon_rtt");
    assert.match(
      err.message,
      /raft\.electon_rtt: unknown key \(in .*\); did you mean raft\.election_rtt\?/,
    );
  });
});

Deno.test("loadConfig lists the known keys when nothing is near an unknown key", () => {
  const err = problemsOf(() =>
    loadConfig({ overrides: ["topics.zzzzzzzzzz=1"] })
  );
  assert.match(
    err.message,
    /known keys here: topics\.auto_create, topics\.default_partitions, topics\.default_replication_factor/,
  );
});

Deno.test("loadConfig spells environment suggestions as variable names", () => {
  const err = problemsOf(() =>
    loadConfig({ env: { RAFTQ_RAFT__ELECTON_RTT: "20" } })
  );
  assert.match(err.message, /did you mean RAFTQ_RAFT__ELECTION_RTT\?/);
});

Deno.test("loadConfig rejects a value of the wrong type, saying what is allowed", () => {
  withFile("raft:\n  check_quorum: 5\nbind_port: [1]\n", (file) => {
    const err = problemsOf(() => loadConfig({ file }));
    const byPath = new Map(err.problems.map((p) => [p.path, p]));
    assert.equal(byPath.get("raft.check_quorum")?.value, 5);
    assert.match(
      byPath.get("raft.check_quorum")!.message,
      /expected true or false/,
    );
    assert.match(byPath.get("bind_port")!.message, /expected a port number/);
  });
});

Deno.test("loadConfig rejects a section given as a scalar", () => {
  withFile("raft: 5\n", (file) => {
    const err = problemsOf(() => loadConfig({ file }));
    assert.equal(err.problems[0]?.path, "raft");
    assert.match(
      err.message,
      /expected a mapping of keys \(raft\.rtt_millisecond/,
    );
  });
});

Deno.test("loadConfig rejects numbers out of range", () => {
  const err = problemsOf(() =>
    loadConfig({
      overrides: [
        "bind_port=70000",
        "topics.default_partitions=0",
        "performance.max_batch_bytes=64MiB",
      ],
    })
  );
  assert.deepEqual(err.problems.map((p) => p.path), [
    "bind_port",
    "performance.max_batch_bytes",
    "topics.default_partitions",
  ]);
  assert.match(
    err.message,
    /bind_port: "70000" is not valid .*port number from 1 to 65535, or 0/,
  );
  assert.match(err.message, /an integer from 1 to 100000/);
  assert.match(err.message, /from 1 to 33554432 bytes/);
});

Deno.test("loadConfig rejects a bad duration and a bad size", () => {
  withFile(
    "discovery:\n  timeout: 5 parsecs\nperformance:\n  max_batch_bytes: 4 furlongs\n",
    (file) => {
      const err = problemsOf(() => loadConfig({ file }));
      assert.deepEqual(err.problems.map((p) => p.path), [
        "discovery.timeout",
        "performance.max_batch_bytes",
      ]);
      assert.match(
        err.message,
        /"5 parsecs" is not valid .*expected a duration/,
      );
      assert.match(err.message, /"4 furlongs" is not valid .*expected a size/);
    },
  );
});

Deno.test("loadConfig rejects a value outside an enum, listing the choices", () => {
  const err = problemsOf(() =>
    loadConfig({ overrides: ["discovery.type=consul"] })
  );
  assert.match(
    err.message,
    /discovery\.type: "consul" is not valid \(from the command line\): expected one of "memory", "static", "etcd"/,
  );
});

Deno.test("loadConfig accepts -1 only where it means unlimited", () => {
  const config = loadConfig({
    overrides: ["log.retention_ms=-1", "log.retention_bytes=-1"],
  });
  assert.equal(config.log.retentionMs, -1);
  assert.equal(config.log.retentionBytes, -1);
  const err = problemsOf(() =>
    loadConfig({ overrides: ["log.segment_ms=-1"] })
  );
  assert.equal(err.problems[0]?.path, "log.segment_ms");
});

Deno.test("loadConfig reports several problems together", () => {
  withFile(
    "bind_port: x\nraft:\n  electon_rtt: 1\nlog:\n  segment_ms: never\n",
    (file) => {
      const err = problemsOf(() =>
        loadConfig({
          file,
          env: { RAFTQ_TOPICS__AUTO_CREATE: "maybe" },
          overrides: ["nope"],
        })
      );
      assert.deepEqual(err.problems.map((p) => p.path).sort(), [
        "bind_port",
        "log.segment_ms",
        "nope",
        "raft.electon_rtt",
        "topics.auto_create",
      ]);
      assert.match(err.message, /^Invalid configuration \(5 problems\):/);
    },
  );
});

Deno.test("loadConfig requires election_rtt above twice heartbeat_rtt", () => {
  const err = problemsOf(() =>
    loadConfig({ overrides: ["raft.heartbeat_rtt=5", "raft.election_rtt=10"] })
  );
  assert.equal(err.problems[0]?.path, "raft.election_rtt");
  assert.match(err.message, /greater than 2 × raft\.heartbeat_rtt \(10\)/);
  assert.equal(
    loadConfig({ overrides: ["raft.heartbeat_rtt=5", "raft.election_rtt=11"] })
      .raft.electionRtt,
    11,
  );
});

Deno.test("loadConfig applies defaults < file < environment < flags", () => {
  withFile(
    "bind_port: 9001\nraft_port: 9101\nadvertised_host: filehost\n",
    (file) => {
      const config = loadConfig({
        file,
        env: {
          RAFTQ_RAFT_PORT: "9102",
          RAFTQ_ADVERTISED_HOST: "envhost",
          HOME: "/x",
        },
        overrides: ["advertised_host=flaghost"],
      });
      assert.equal(config.bindPort, 9001);
      assert.equal(config.raftPort, 9102);
      assert.equal(config.advertisedHost, "flaghost");
      assert.equal(
        config.advertisedPort,
        9001,
        "advertised_port follows bind_port",
      );
      assert.equal(config.dataDir, "./data/broker-1");
    },
  );
});

Deno.test("loadConfig maps `__` in environment names to nesting and keeps `_`", () => {
  const config = loadConfig({
    env: { RAFTQ_RAFT__ELECTION_RTT: "30", RAFTQ_LOG__SEGMENT_MS: "1h" },
  });
  assert.equal(config.raft.electionRtt, 30);
  assert.equal(config.log.segmentMs, 3_600_000);
});

Deno.test("loadConfig reads node ids in the seed's text form", () => {
  const config = loadConfig({ overrides: ["node_id=broker-7"] });
  assert.equal(config.nodeId, 7);
  assert.equal(config.nodeName, "broker-7");
  assert.equal(config.dataDir, "./data/broker-7");
  assert.equal(
    loadConfig({ env: { RAFTQ_NODE_ID: "3" } }).nodeName,
    "broker-3",
  );
  const err = problemsOf(() => loadConfig({ overrides: ["node_id=broker"] }));
  assert.equal(err.problems[0]?.path, "node_id");
});

Deno.test("loadConfig parses static peers from a list or a comma-separated string", () => {
  const expected = [
    { nodeId: 1, host: "10.0.0.1", port: 19092 },
    { nodeId: 2, host: "::1", port: 19093 },
  ];
  const fromFlag = loadConfig({
    overrides: [
      "discovery.type=static",
      "discovery.peers=1@10.0.0.1:19092, 2@[::1]:19093",
    ],
  });
  assert.deepEqual(fromFlag.discovery.peers, expected);
  withFile(
    'discovery:\n  type: static\n  peers: ["1@10.0.0.1:19092", "2@[::1]:19093"]\n',
    (file) => assert.deepEqual(loadConfig({ file }).discovery.peers, expected),
  );
});

Deno.test("loadConfig rejects malformed, duplicate or missing static peers", () => {
  const bad = problemsOf(() =>
    loadConfig({
      overrides: ["discovery.type=static", "discovery.peers=1@host"],
    })
  );
  assert.match(
    bad.message,
    /discovery\.peers: "1@host" is not valid .*"id@host:raft_port"/,
  );
  const twice = problemsOf(() =>
    loadConfig({
      overrides: ["discovery.type=static", "discovery.peers=1@a:1,1@b:2"],
    })
  );
  assert.match(twice.message, /lists node id 1 twice/);
  const none = problemsOf(() =>
    loadConfig({ overrides: ["discovery.type=static"] })
  );
  assert.match(none.message, /discovery\.peers: is empty/);
});

Deno.test("loadConfig requires etcd endpoints for etcd discovery", () => {
  const err = problemsOf(() =>
    loadConfig({ env: { RAFTQ_DISCOVERY__TYPE: "etcd" } })
  );
  assert.equal(err.problems[0]?.path, "discovery.endpoints");
  const config = loadConfig({
    env: {
      RAFTQ_DISCOVERY__TYPE: "etcd",
      RAFTQ_DISCOVERY__ENDPOINTS: "a:2379,b:2379",
    },
  });
  assert.deepEqual(config.discovery.endpoints, ["a:2379", "b:2379"]);
});

Deno.test("parseDurationMs reads each unit and plain milliseconds", () => {
  assert.equal(parseDurationMs("10ms"), 10);
  assert.equal(parseDurationMs("5s"), 5000);
  assert.equal(parseDurationMs("2m"), 120_000);
  assert.equal(parseDurationMs("1h"), 3_600_000);
  assert.equal(parseDurationMs("7d"), 604_800_000);
  assert.equal(parseDurationMs("1.5s"), 1500);
  assert.equal(parseDurationMs(250), 250);
  assert.equal(parseDurationMs("250"), 250);
  assert.equal(parseDurationMs("5 weeks"), undefined);
  assert.equal(parseDurationMs("0.5ms"), undefined);
});

Deno.test("parseSizeBytes tells binary units from SI ones", () => {
  assert.equal(parseSizeBytes("512KiB"), 512 * 1024);
  assert.equal(parseSizeBytes("64MiB"), 64 * 2 ** 20);
  assert.equal(parseSizeBytes("1GiB"), 2 ** 30);
  assert.equal(parseSizeBytes("1MB"), 1_000_000);
  assert.equal(parseSizeBytes("4096"), 4096);
  assert.equal(parseSizeBytes(true), undefined);
  assert.equal(parseSizeBytes("1XB"), undefined);
});

Deno.test("describeConfig gives every field its env name and a parseable default", () => {
  const rows = describeConfig();
  const election = rows.find((r) => r.key === "raft.election_rtt");
  assert.equal(election?.env, "RAFTQ_RAFT__ELECTION_RTT");
  assert.equal(election?.default, 10);
  assert.equal(new Set(rows.map((r) => r.key)).size, rows.length);
});

Deno.test("loadConfig reads listeners from YAML mappings and PROTOCOL://host:port text", () => {
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/broker.yaml`;
  Deno.writeTextFileSync(
    file,
    [
      "tls: {cert_file: c.pem, key_file: k.pem}",
      "listeners:",
      "  - {name: INTERNAL, host: 127.0.0.1, port: 9092, protocol: PLAINTEXT}",
      "  - name: EXTERNAL",
      "    port: 9094",
      "    protocol: SASL_SSL",
      "    advertised_host: kafka.example",
      "    sasl_mechanisms: [SCRAM-SHA-512]",
    ].join("\n"),
  );
  const config = loadConfig({ file });
  assert.deepEqual(config.listeners.map((l) => [l.name, l.host, l.port]), [
    ["INTERNAL", "127.0.0.1", 9092],
    ["EXTERNAL", "0.0.0.0", 9094],
  ]);
  assert.equal(config.listeners[1]!.advertisedHost, "kafka.example");
  assert.equal(config.listeners[1]!.advertisedPort, 9094);
  assert.deepEqual(config.listeners[1]!.saslMechanisms, ["SCRAM-SHA-512"]);
  const fromEnv = loadConfig({
    env: {
      RAFTQ_LISTENERS: "PLAINTEXT://:9092,SASL_PLAINTEXT://127.0.0.1:9093",
    },
  });
  assert.deepEqual(fromEnv.listeners.map((l) => [l.protocol, l.host, l.port]), [
    ["PLAINTEXT", "0.0.0.0", 9092],
    ["SASL_PLAINTEXT", "127.0.0.1", 9093],
  ]);
});

Deno.test("loadConfig names the listener field at fault and its value", () => {
  const problemsOf = (overrides: string[]) => {
    try {
      loadConfig({ overrides });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail("expected a ConfigError");
  };
  assert.match(
    problemsOf(["listeners=PLAINTEXT://:9092,TLS://:9093"]),
    /listeners\[1\]\.protocol: "TLS" is not one of PLAINTEXT, SSL/,
  );
  assert.match(
    problemsOf(["listeners=SSL://:9093"]),
    /listeners\[0\]\.protocol: SSL needs tls.cert_file and tls.key_file/,
  );
  assert.match(
    problemsOf(["listeners=PLAINTEXT://:9092,SASL_PLAINTEXT://:9092"]),
    /listeners\[1\]\.name: "SASL_PLAINTEXT"|listeners\[1\]\.port: 9092 is taken/,
  );
  assert.match(
    problemsOf(["tls.client_auth=required"]),
    /tls.client_auth: "required" needs tls.ca_file/,
  );
  assert.doesNotThrow(() =>
    loadConfig({
      overrides: ["tls.client_auth=requested", "tls.ca_file=/etc/raftq/ca.pem"],
    })
  );
});

Deno.test("loadConfig names admin.tls without a certificate", () => {
  const tls = problemsOf(() => loadConfig({ overrides: ["admin.tls=true"] }));
  assert.equal(tls.problems.length, 1);
  assert.match(
    tls.message,
    /admin\.tls: .*needs tls\.cert_file and tls\.key_file/,
  );
  const served = loadConfig({
    overrides: [
      "admin.tls=true",
      "tls.cert_file=/etc/raftq/cert.pem",
      "tls.key_file=/etc/raftq/key.pem",
    ],
  });
  assert.equal(served.admin.tls, true);
});

Deno.test("loadConfig asks for all three raft.tls files or none, naming the missing one", () => {
  const problems = problemsOf(() =>
    loadConfig({
      overrides: [
        "raft.tls.cert_file=/etc/raftq/raft.pem",
        "raft.tls.ca_file=/etc/raftq/ca.pem",
      ],
    })
  );
  assert.equal(problems.problems.length, 1);
  assert.equal(problems.problems[0]!.path, "raft.tls.key_file");
  assert.match(
    problems.problems[0]!.message,
    /needed with raft\.tls\.cert_file and raft\.tls\.ca_file/,
  );
  const all = loadConfig({
    overrides: [
      "raft.tls.cert_file=a.pem",
      "raft.tls.key_file=a.key",
      "raft.tls.ca_file=ca.pem",
    ],
  });
  assert.equal(all.raft.tls.keyFile, "a.key");
});
