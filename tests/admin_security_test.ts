/**
 * The admin HTTP listener's TLS and authentication on real broker
 * processes: with admin.tls it serves HTTPS with the SSL listeners'
 * certificate (made by openssl, trusted through a Deno.createHttpClient
 * holding the test CA) and nothing over plain HTTP; a broker whose admin
 * TLS cannot be served refuses to start and names the field at fault;
 * with admin.auth basic it asks for a raftq user's password (and, with
 * authorization on, an ACL) on every path but the health probes.
 */
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { freePorts, raftq, removeDir, startBroker } from "./harness.ts";
import { makeCerts } from "./tls_certs.ts";

const certs = await makeCerts();
const trusting = Deno.createHttpClient({
  caCerts: [await Deno.readTextFile(certs.caFile)],
});
const TLS_SET = [
  "admin.tls=true",
  `tls.cert_file=${certs.certFile}`,
  `tls.key_file=${certs.keyFile}`,
];

Deno.test("admin.tls serves the admin API over HTTPS with the broker's certificate, and not over HTTP", async () => {
  const broker = await startBroker({
    adminPort: freePorts(1)[0]!,
    set: TLS_SET,
  });
  try {
    assert.match(broker.adminUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const live = await fetch(`${broker.adminUrl}/v1/health/live`, {
      client: trusting,
    });
    assert.equal(live.status, 200);
    assert.equal((await live.json()).status, "live");
    const metrics = await fetch(`${broker.adminUrl}/metrics`, {
      client: trusting,
    });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /raftq_kafka_requests_total/);
    // Without the test CA the certificate is not trusted.
    await assert.rejects(fetch(`${broker.adminUrl}/v1/health/live`));
    await assert.rejects(
      fetch(`http://127.0.0.1:${broker.adminPort}/v1/health/live`),
    );
  } finally {
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("raftq serve refuses admin.tls without a certificate or with one it cannot read, naming the field", async () => {
  const [adminPort] = freePorts(1);
  const dataDir = await Deno.makeTempDir({ prefix: "raftq-admin-tls-" });
  const serve = (set: string[]) =>
    raftq([
      "serve",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      ...[`admin.port=${adminPort}`, ...set].flatMap((s) => ["--set", s]),
    ], { timeoutMs: 30_000 });
  try {
    const bare = await serve(["admin.tls=true"]);
    assert.notEqual(bare.code, 0);
    assert.match(
      bare.stderr,
      /admin\.tls: .*needs tls\.cert_file and tls\.key_file/,
    );
    const missing = await serve([
      "admin.tls=true",
      `tls.cert_file=${certs.dir}/absent.pem`,
      `tls.key_file=${certs.keyFile}`,
    ]);
    assert.notEqual(missing.code, 0);
    assert.match(
      missing.stderr,
      /admin\.tls: cannot read tls\.cert_file ".*absent\.pem"/,
    );
    const notKey = await serve([
      "admin.tls=true",
      `tls.cert_file=${certs.certFile}`,
      `tls.key_file=${certs.certFile}`,
    ]);
    assert.notEqual(notKey.code, 0);
    assert.match(
      notKey.stderr,
      /admin\.tls: cannot serve tls\.cert_file ".*" with tls\.key_file ".*server\.pem": .*key/,
    );
    assert.doesNotMatch(notKey.stderr, /internal error/);
  } finally {
    await removeDir(dataDir);
  }
});

Deno.test("admin.auth basic asks every path but the health probes for a raftq user's password, and for DESCRIBE on the cluster when authorization is on", async () => {
  const [saslPort] = freePorts(1);
  const broker = await startBroker({
    adminPort: freePorts(1)[0]!,
    set: [
      "admin.auth=basic",
      `listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      "authorization.enabled=true",
      "authorization.super_users=User:admin",
    ],
  });
  const get = (path: string, credentials?: string) =>
    fetch(`${broker.adminUrl}${path}`, {
      headers: credentials === undefined
        ? {}
        : { authorization: `Basic ${btoa(credentials)}` },
    });
  const statusOf = async (path: string, credentials?: string) => {
    const response = await get(path, credentials);
    await response.body?.cancel();
    return response.status;
  };
  try {
    assert.equal(await statusOf("/v1/health/live"), 200, "probes stay open");
    assert.notEqual(await statusOf("/v1/health/ready"), 401);
    const challenged = await get("/metrics");
    assert.equal(challenged.status, 401);
    assert.match(
      challenged.headers.get("www-authenticate") ?? "",
      /^Basic realm="raftq"/,
    );
    assert.match((await challenged.json()).error, /HTTP Basic/);

    const loopback = await KafkaClient.connect(broker.bootstrap);
    try {
      await loopback.upsertUser("admin", {
        mechanism: "SCRAM-SHA-512",
        password: "admin-pw",
      });
    } finally {
      await loopback.close();
    }
    const admin = await KafkaClient.connect(`127.0.0.1:${saslPort}`, {
      security: {
        sasl: {
          mechanism: "SCRAM-SHA-512",
          username: "admin",
          password: "admin-pw",
        },
      },
    });
    try {
      await admin.upsertUser("ops", {
        mechanism: "SCRAM-SHA-256",
        password: "ops-pw",
      });
      assert.equal(await statusOf("/metrics", "admin:admin-pw"), 200);
      assert.equal(await statusOf("/", "admin:admin-pw"), 200);
      assert.equal(await statusOf("/v1/topics", "admin:wrong"), 401);
      assert.equal(await statusOf("/v1/topics", "nobody:admin-pw"), 401);
      assert.equal(await statusOf("/v1/topics", "admin"), 401, "no colon");
      const forbidden = await get("/v1/brokers", "ops:ops-pw");
      assert.equal(forbidden.status, 403);
      assert.match((await forbidden.json()).error, /"ops" may not DESCRIBE/);
      await admin.createAcls([{
        resourceType: "cluster",
        patternType: "literal",
        resourceName: "kafka-cluster",
        principal: "User:ops",
        host: "*",
        operation: "describe",
        permission: "allow",
      }]);
      assert.equal(await statusOf("/v1/brokers", "ops:ops-pw"), 200);
      // A new password replaces the old one at once, cached or not.
      await admin.upsertUser("ops", {
        mechanism: "SCRAM-SHA-256",
        password: "ops-pw-2",
      });
      assert.equal(await statusOf("/v1/brokers", "ops:ops-pw"), 401);
      assert.equal(await statusOf("/v1/brokers", "ops:ops-pw-2"), 200);
    } finally {
      await admin.close();
    }
    assert.ok(!broker.logs().includes("ops-pw"), "no password in the log");
  } finally {
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
