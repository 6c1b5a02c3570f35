/**
 * Mutual TLS end to end: an SSL listener with tls.client_auth=required,
 * client certificates made by openssl, the certificate's subject as the
 * principal that ACLs name, with kcat (librdkafka), kafkajs and raftq's own
 * CLI as clients.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { freePorts } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  kcatProduce,
  raftq,
  removeDir,
  startBroker,
} from "./harness.ts";
import { makeCerts, signCert } from "./tls_certs.ts";

const [plainPort, sslPort] = freePorts(2) as [number, number];
const certs = await makeCerts();
const stranger = await makeCerts();
const clients = {
  admin: await signCert(certs, "admin", "/O=raftq/CN=admin"),
  alice: await signCert(certs, "alice", "/O=acme/CN=alice"),
  bob: await signCert(certs, "bob", "/O=acme/CN=bob"),
  mallory: await signCert(stranger, "mallory", "/O=raftq/CN=admin"),
};
type Client = keyof typeof clients;

function kcatAs(who: Client): string[] {
  return [
    "-X",
    "security.protocol=SSL",
    "-X",
    `ssl.ca.location=${certs.caFile}`,
    "-X",
    `ssl.certificate.location=${clients[who].certFile}`,
    "-X",
    `ssl.key.location=${clients[who].keyFile}`,
  ];
}

function kafkajs(who: Client): Kafka {
  const read = (file: string) => Deno.readTextFileSync(file);
  return new Kafka({
    clientId: `mtls-test-${who}`,
    brokers: [`127.0.0.1:${sslPort}`],
    ssl: {
      ca: [read(certs.caFile)],
      cert: read(clients[who].certFile),
      key: read(clients[who].keyFile),
    },
    retry: { retries: 1, initialRetryTime: 100 },
    logLevel: logLevel.NOTHING,
  });
}

/** `raftq <args>` over SSL, with `who`'s certificate unless null. */
async function raftqAs(
  dir: string,
  who: Client | null,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const properties = `${dir}/${who ?? "nobody"}.properties`;
  await Deno.writeTextFile(
    properties,
    [
      "security.protocol=SSL",
      `ssl.ca.location=${certs.caFile}`,
      ...(who === null ? [] : [
        `ssl.certificate.location=${clients[who].certFile}`,
        `ssl.key.location=${clients[who].keyFile}`,
      ]),
    ].join("\n"),
  );
  const out = await raftq([
    ...args,
    "--bootstrap",
    `localhost:${sslPort}`,
    "--command-config",
    properties,
  ]);
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: out.stderr,
  };
}

Deno.test({
  name:
    "mTLS: client certificates of the CA are the principals ACLs name; kcat, kafkajs and raftq without one, or with one of another CA, are refused at the handshake",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const broker = await startBroker({
      set: [
        `listeners=PLAINTEXT://127.0.0.1:${plainPort},SSL://127.0.0.1:${sslPort}`,
        `tls.cert_file=${certs.certFile}`,
        `tls.key_file=${certs.keyFile}`,
        `tls.ca_file=${certs.caFile}`,
        "tls.client_auth=required",
        "authorization.enabled=true",
        // The string form separates principals with ";": a subject has commas.
        "authorization.super_users=User:CN=admin,O=raftq;User:operator",
      ],
    });
    const admin = (args: string[]) =>
      raftqAs(broker.dataDir, "admin", args).then((out) => {
        assert.equal(out.code, 0, `raftq ${args.join(" ")}: ${out.stderr}`);
        return out.stdout;
      });
    try {
      await t.step(
        "the admin certificate is a super user: it creates a topic and grants alice's subject",
        async () => {
          await admin(["topic", "create", "orders"]);
          const created = await admin([
            "acl",
            "create",
            "--topic",
            "orders",
            "--allow-principal",
            "User:CN=alice,O=acme",
            "--operation",
            "Write",
            "--operation",
            "Read",
            "--operation",
            "Describe",
          ]);
          assert.match(created, /Created 3 ACL\(s\)/);
          await admin([
            "acl",
            "create",
            "--group",
            "readers",
            "--allow-principal",
            "User:CN=alice,O=acme",
            "--operation",
            "Read",
          ]);
        },
      );

      await t.step(
        "alice produces with kcat and consumes in a group with kafkajs",
        async () => {
          await kcatProduce(
            `127.0.0.1:${sslPort}`,
            "orders",
            ["one", "two"],
            kcatAs("alice"),
          );
          const read = await kcatConsume(
            `127.0.0.1:${sslPort}`,
            "orders",
            kcatAs("alice"),
          );
          assert.deepEqual(read.get(0)?.map((r) => r.value), ["one", "two"]);
          const consumer = kafkajs("alice").consumer({ groupId: "readers" });
          const values: string[] = [];
          try {
            await consumer.connect();
            await consumer.subscribe({ topic: "orders", fromBeginning: true });
            await new Promise<void>((resolve, reject) => {
              consumer.on(
                consumer.events.CRASH,
                (e) => reject(e.payload.error),
              );
              consumer.run({
                eachMessage: ({ message }) => {
                  values.push(message.value?.toString() ?? "");
                  if (values.length === 2) resolve();
                  return Promise.resolve();
                },
              }).catch(reject);
            });
          } finally {
            await consumer.disconnect();
          }
          assert.deepEqual(values, ["one", "two"]);
        },
      );

      await t.step(
        "bob's certificate of the same CA connects but holds no ACL",
        async () => {
          const producer = kafkajs("bob").producer();
          await producer.connect();
          try {
            await assert.rejects(
              producer.send({ topic: "orders", messages: [{ value: "x" }] }),
              // kafkajs names the code only in its message here.
              /Topic authorization failed/,
            );
          } finally {
            await producer.disconnect();
          }
        },
      );

      await t.step(
        "no certificate, or the admin's subject from another CA, fails the handshake",
        async () => {
          for (const who of [null, "mallory"] as const) {
            const out = await raftqAs(broker.dataDir, who, ["topic", "list"]);
            assert.notEqual(out.code, 0, `${who}: ${out.stdout}`);
          }
          assert.match(
            broker.logs(),
            /TLS handshake with 127\.0\.0\.1:\d+ failed/,
          );
          const values = await kcatConsume(
            `127.0.0.1:${sslPort}`,
            "orders",
            kcatAs("alice"),
          );
          assert.equal(values.get(0)?.length, 2, "the broker serves on");
        },
      );
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
      await removeDir(certs.dir);
      await removeDir(stranger.dir);
    }
  },
});
