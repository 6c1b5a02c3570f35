/**
 * The admin HTTP listener's TLS and authentication on real broker
 * processes: with admin.tls it serves HTTPS with the SSL listeners'
 * certificate (made by openssl, trusted through a Deno.createHttpClient
 * holding the test CA) and nothing over plain HTTP; a broker whose admin
 * TLS cannot be served refuses to start and names the field at fault.
 */
import assert from "node:assert/strict";
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
