/**
 * Security end to end: one broker with a PLAINTEXT, an SSL, a
 * SASL_PLAINTEXT and a SASL_SSL listener (certificates made by openssl),
 * its first user created from loopback before any user exists, then real
 * clients (kcat/librdkafka, kafkajs, @platformatic/kafka, raftq's CLI)
 * over each. Refusals are checked on raw sockets: a wrong password, a
 * request before authentication and malformed SASL bytes each close their
 * own connection while the broker goes on serving the others.
 */
import assert from "node:assert/strict";
import { Kafka } from "kafkajs";
import {
  ApiKey,
  decodeResponse,
  encodeRequest,
  ErrorCode,
} from "../src/protocol/mod.ts";
import { KafkaClient } from "../src/client/mod.ts";
import { freePorts } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  kcatProduce,
  raftq,
  rawExchange,
  removeDir,
  startBroker,
} from "./harness.ts";
import { makeCerts } from "./tls_certs.ts";

const certs = await makeCerts();
const [plainPort, sslPort, saslPort, saslSslPort] = freePorts(4) as [
  number,
  number,
  number,
  number,
];
const PASSWORD = "s3cret-pencil";

async function securedBroker() {
  return await startBroker({
    set: [
      `listeners=PLAINTEXT://127.0.0.1:${plainPort},SSL://127.0.0.1:${sslPort},SASL_PLAINTEXT://127.0.0.1:${saslPort},SASL_SSL://127.0.0.1:${saslSslPort}`,
      `tls.cert_file=${certs.certFile}`,
      `tls.key_file=${certs.keyFile}`,
    ],
  });
}

function kcatSecurity(
  protocol: string,
  mechanism?: string,
  user = "alice",
): string[] {
  const args = ["-X", `security.protocol=${protocol}`];
  if (protocol.endsWith("SSL")) {
    args.push("-X", `ssl.ca.location=${certs.caFile}`);
  }
  if (mechanism !== undefined) {
    args.push(
      "-X",
      `sasl.mechanisms=${mechanism}`,
      "-X",
      `sasl.username=${user}`,
      "-X",
      `sasl.password=${PASSWORD}`,
    );
  }
  return args;
}

const header = { correlationId: 7, clientId: "security-test" };
const handshake = (mechanism: string) =>
  encodeRequest(ApiKey.SaslHandshake, 1, header, { mechanism });
const authenticate = (token: string) =>
  encodeRequest(ApiKey.SaslAuthenticate, 1, header, {
    authBytes: new TextEncoder().encode(token),
  });

Deno.test({
  name:
    "security: listeners, TLS and SASL with kcat, kafkajs, platformatic and the CLI",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const broker = await securedBroker();
    try {
      await t.step(
        "a loopback client creates the first user before any exists, then adds to it authenticated",
        async () => {
          const anonymous = await KafkaClient.connect(`127.0.0.1:${saslPort}`);
          try {
            await anonymous.upsertUser("alice", {
              mechanism: "SCRAM-SHA-256",
              password: PASSWORD,
            });
          } finally {
            await anonymous.close();
          }
          const alice = await KafkaClient.connect(`127.0.0.1:${saslPort}`, {
            security: {
              sasl: {
                mechanism: "SCRAM-SHA-256",
                username: "alice",
                password: PASSWORD,
              },
            },
          });
          try {
            await alice.upsertUser("alice", {
              mechanism: "SCRAM-SHA-512",
              password: PASSWORD,
            });
            assert.deepEqual(await alice.describeUsers(null), [{
              user: "alice",
              credentials: [
                { mechanism: "SCRAM-SHA-256", iterations: 4096 },
                { mechanism: "SCRAM-SHA-512", iterations: 4096 },
              ],
            }]);
          } finally {
            await alice.close();
          }
        },
      );

      await t.step(
        "once a user exists, an unauthenticated client may not add users",
        async () => {
          const client = await KafkaClient.connect(`127.0.0.1:${plainPort}`);
          try {
            await assert.rejects(
              client.upsertUser("mallory", {
                mechanism: "SCRAM-SHA-256",
                password: "x",
              }),
              /authenticated connection/,
            );
          } finally {
            await client.close();
          }
        },
      );

      await t.step(
        "kcat produces over SASL_SSL with SCRAM-SHA-256 and reads back with SCRAM-SHA-512 and PLAIN",
        async () => {
          const bootstrap = `127.0.0.1:${saslSslPort}`;
          await kcatProduce(
            bootstrap,
            "secure",
            ["a", "b"],
            kcatSecurity("SASL_SSL", "SCRAM-SHA-256"),
          );
          for (const mechanism of ["SCRAM-SHA-512", "PLAIN"]) {
            const read = await kcatConsume(
              bootstrap,
              "secure",
              kcatSecurity("SASL_SSL", mechanism),
            );
            assert.deepEqual(
              read.get(0)?.map((r) => r.value),
              ["a", "b"],
              mechanism,
            );
          }
        },
      );

      await t.step(
        "kcat reads over SSL without SASL and over SASL_PLAINTEXT",
        async () => {
          const ssl = await kcatConsume(
            `127.0.0.1:${sslPort}`,
            "secure",
            kcatSecurity("SSL"),
          );
          assert.deepEqual(ssl.get(0)?.map((r) => r.value), ["a", "b"]);
          const sasl = await kcatConsume(
            `127.0.0.1:${saslPort}`,
            "secure",
            kcatSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512"),
          );
          assert.deepEqual(sasl.get(0)?.map((r) => r.value), ["a", "b"]);
        },
      );

      await t.step(
        "Metadata answers with the addresses of the listener asked",
        async () => {
          for (const port of [plainPort, saslSslPort]) {
            const client = await KafkaClient.connect(
              `127.0.0.1:${port}`,
              port === plainPort ? {} : {
                security: {
                  tls: { caCerts: [await Deno.readTextFile(certs.caFile)] },
                  sasl: {
                    mechanism: "SCRAM-SHA-256",
                    username: "alice",
                    password: PASSWORD,
                  },
                },
              },
            );
            try {
              const metadata = await client.metadata(null);
              assert.deepEqual(metadata.brokers.map((b) => b.port), [port]);
            } finally {
              await client.close();
            }
          }
        },
      );

      await t.step(
        "kafkajs produces and consumes over ssl + sasl scram-sha-512",
        async () => {
          const kafka = new Kafka({
            clientId: "security-kafkajs",
            brokers: [`localhost:${saslSslPort}`],
            ssl: { ca: [await Deno.readTextFile(certs.caFile)] },
            sasl: {
              mechanism: "scram-sha-512",
              username: "alice",
              password: PASSWORD,
            },
            logLevel: 0,
          });
          const producer = kafka.producer();
          await producer.connect();
          await producer.send({ topic: "secure", messages: [{ value: "c" }] });
          await producer.disconnect();
          const admin = kafka.admin();
          await admin.connect();
          const offsets = await admin.fetchTopicOffsets("secure");
          await admin.disconnect();
          assert.equal(offsets[0]?.high, "3");
        },
      );

      await t.step(
        "@platformatic/kafka lists the topic over sasl plain",
        async () => {
          const { Admin } = await import("@platformatic/kafka");
          const admin = new Admin({
            clientId: "security-platformatic",
            bootstrapBrokers: [`127.0.0.1:${saslPort}`],
            sasl: { mechanism: "PLAIN", username: "alice", password: PASSWORD },
          });
          try {
            const topics = await admin.listTopics();
            assert.ok(topics.includes("secure"), JSON.stringify(topics));
          } finally {
            await admin.close();
          }
        },
      );

      await t.step(
        "raftq user create, list and delete over SASL_SSL with --command-config",
        async () => {
          const properties = `${certs.dir}/client.properties`;
          await Deno.writeTextFile(
            properties,
            [
              "# as Kafka's scripts take it",
              "security.protocol=SASL_SSL",
              "sasl.mechanism=SCRAM-SHA-512",
              "sasl.username=alice",
              `sasl.password=${PASSWORD}`,
              `ssl.ca.location=${certs.caFile}`,
            ].join("\n"),
          );
          const cli = (args: string[], stdin?: string) =>
            raftq(
              [
                "user",
                ...args,
                "--bootstrap",
                `localhost:${saslSslPort}`,
                "--command-config",
                properties,
              ],
              stdin === undefined ? {} : {
                stdin: new TextEncoder().encode(stdin),
              },
            );
          const created = await cli(
            [
              "create",
              "bob",
              "--mechanism",
              "SCRAM-SHA-512",
              "--password-stdin",
            ],
            "bob-pw\n",
          );
          assert.equal(created.code, 0, created.stderr);
          const listed = await cli(["list"]);
          assert.equal(listed.code, 0, listed.stderr);
          const text = new TextDecoder().decode(listed.stdout);
          assert.match(text, /bob\s+SCRAM-SHA-512\s+4096/);
          assert.match(text, /alice\s+SCRAM-SHA-256/);
          const read = await kcatConsume(
            `127.0.0.1:${saslPort}`,
            "secure",
            [
              "-X",
              "security.protocol=SASL_PLAINTEXT",
              "-X",
              "sasl.mechanisms=SCRAM-SHA-512",
              "-X",
              "sasl.username=bob",
              "-X",
              "sasl.password=bob-pw",
            ],
          );
          assert.ok((read.get(0)?.length ?? 0) >= 2);
          const deleted = await cli(["delete", "bob"]);
          assert.equal(deleted.code, 0, deleted.stderr);
          const after = new TextDecoder().decode((await cli(["list"])).stdout);
          assert.doesNotMatch(after, /bob/);
          const bad = await raftq([
            "user",
            "list",
            "--bootstrap",
            `localhost:${saslSslPort}`,
          ]);
          assert.notEqual(bad.code, 0, "no TLS, no SASL: refused");
        },
      );

      await t.step(
        "a wrong password gets SASL_AUTHENTICATION_FAILED, then the close",
        async () => {
          const replies = await rawExchange(saslPort, [
            handshake("PLAIN"),
            authenticate("\u0000alice\u0000wrong-pw-7c1e"),
          ]);
          assert.notEqual(replies, "closed");
          const [, auth, end] = replies as Uint8Array[];
          const body = decodeResponse(ApiKey.SaslAuthenticate, 1, auth!).body;
          assert.equal(body.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED);
          assert.equal(end?.length, 0, "the broker closes the connection");
          assert.ok(
            !broker.logs().includes("wrong-pw-7c1e"),
            "no password in the log",
          );
          assert.ok(
            !broker.logs().includes(PASSWORD),
            "no password in the log",
          );
        },
      );

      await t.step("kcat with a wrong password is refused", async () => {
        const args = kcatSecurity("SASL_SSL", "SCRAM-SHA-256", "alice");
        args[args.length - 1] = "sasl.password=nope";
        await assert.rejects(
          kcatConsume(`127.0.0.1:${saslSslPort}`, "secure", [
            ...args,
            "-m",
            "10",
          ]),
          /kcat -C failed/,
        );
      });

      await t.step(
        "SaslHandshake v0 then a bare PLAIN token authenticates, and an unoffered mechanism is refused",
        async () => {
          const plainToken = new TextEncoder().encode(
            `\u0000alice\u0000${PASSWORD}`,
          );
          const bare = new Uint8Array(4 + plainToken.length);
          new DataView(bare.buffer).setInt32(0, plainToken.length);
          bare.set(plainToken, 4);
          const metadata = encodeRequest(ApiKey.Metadata, 4, header, {
            topics: null,
            allowAutoTopicCreation: false,
          });
          const replies = await rawExchange(saslPort, [
            encodeRequest(ApiKey.SaslHandshake, 0, header, {
              mechanism: "PLAIN",
            }),
            bare,
            metadata,
          ]);
          assert.notEqual(replies, "closed");
          const [, token, answer] = replies as Uint8Array[];
          assert.equal(token?.length, 0, "PLAIN answers an empty token");
          const brokers = decodeResponse(ApiKey.Metadata, 4, answer!).body
            .brokers;
          assert.deepEqual(brokers.map((b) => b.port), [saslPort]);

          const refused = await rawExchange(saslPort, [handshake("GSSAPI")]);
          assert.notEqual(refused, "closed");
          const body = decodeResponse(
            ApiKey.SaslHandshake,
            1,
            (refused as Uint8Array[])[0]!,
          ).body;
          assert.equal(body.errorCode, ErrorCode.UNSUPPORTED_SASL_MECHANISM);
          assert.deepEqual(body.mechanisms, [
            "SCRAM-SHA-256",
            "SCRAM-SHA-512",
            "PLAIN",
          ]);
        },
      );

      await t.step(
        "a request before authentication closes the connection",
        async () => {
          const metadata = encodeRequest(ApiKey.Metadata, 4, header, {
            topics: null,
            allowAutoTopicCreation: false,
          });
          assert.equal(await rawExchange(saslPort, [metadata]), "closed");
        },
      );

      await t.step(
        "malformed SASL bytes close that connection only",
        async () => {
          const replies = await rawExchange(saslPort, [
            handshake("SCRAM-SHA-256"),
            authenticate("\u00ff\u0000garbage,,="),
          ]);
          assert.notEqual(replies, "closed");
          const auth = (replies as Uint8Array[])[1]!;
          assert.equal(
            decodeResponse(ApiKey.SaslAuthenticate, 1, auth).body.errorCode,
            ErrorCode.SASL_AUTHENTICATION_FAILED,
          );
          const garbage = new Uint8Array([0, 0, 0, 5, 0, 36, 0, 1, 9]);
          assert.equal(await rawExchange(saslPort, [garbage]), "closed");
          // The broker still serves everyone else.
          const read = await kcatConsume(
            `127.0.0.1:${saslSslPort}`,
            "secure",
            kcatSecurity("SASL_SSL", "PLAIN"),
          );
          assert.equal(read.get(0)?.length, 3);
        },
      );

      await t.step(
        "bytes that are not TLS close that one TLS connection",
        async () => {
          const replies = await rawExchange(sslPort, [handshake("PLAIN")]);
          assert.equal(replies, "closed");
        },
      );
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test("limits.max_connections counts the connections of every listener together", async () => {
  const [first, second] = freePorts(2) as [number, number];
  const broker = await startBroker({
    set: [
      `listeners=PLAINTEXT://127.0.0.1:${first},SASL_PLAINTEXT://127.0.0.1:${second}`,
      "limits.max_connections=1",
    ],
  });
  const held = await Deno.connect({ hostname: "127.0.0.1", port: first });
  try {
    // The held connection must be accepted before the second one arrives.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await rawExchange(second, [handshake("PLAIN")]), "closed");
    assert.match(broker.logs(), /limits.max_connections is 1/);
  } finally {
    held.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
