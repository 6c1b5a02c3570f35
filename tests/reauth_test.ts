/**
 * SASL re-authentication (KIP-368): with sasl.max_reauth a SaslAuthenticate
 * v1+ answer carries the session's lifetime; kafkajs re-authenticates on
 * its connection and goes on producing, a connection whose session expired
 * is closed at its next request, and a re-authentication may renew a
 * session but not change its principal or mechanism.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { KafkaClient } from "../src/client/mod.ts";
import {
  ApiKey,
  decodeResponse,
  encodeRequest,
  ErrorCode,
} from "../src/protocol/mod.ts";
import {
  RawConnection,
  rawExchange,
  removeDir,
  startBroker,
} from "./harness.ts";
import { freePorts, waitFor } from "./cluster_harness.ts";

const LIFETIME_MS = 1500;
const [plainPort, saslPort] = freePorts(2) as [number, number];
const header = { correlationId: 3, clientId: "reauth-test" };
const handshake = (mechanism: string, version = 1) =>
  encodeRequest(ApiKey.SaslHandshake, version, header, { mechanism });
const plain = (user: string, password: string) =>
  encodeRequest(ApiKey.SaslAuthenticate, 1, header, {
    authBytes: new TextEncoder().encode(`\u0000${user}\u0000${password}`),
  });
const metadata = encodeRequest(ApiKey.Metadata, 4, header, {
  topics: null,
  allowAutoTopicCreation: false,
});

function authenticateReply(reply: Uint8Array | "closed") {
  assert.notEqual(reply, "closed");
  return decodeResponse(ApiKey.SaslAuthenticate, 1, reply as Uint8Array).body;
}

Deno.test({
  name:
    "re-authentication: sessions last sasl.max_reauth, kafkajs renews them on its connection, an expired one is closed, and a renewal cannot change principal or mechanism",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const broker = await startBroker({
      set: [
        `listeners=PLAINTEXT://127.0.0.1:${plainPort},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        `sasl.max_reauth=${LIFETIME_MS}ms`,
      ],
    });
    try {
      // The first user comes from loopback; the next needs a signed-in one.
      const first = await KafkaClient.connect(`127.0.0.1:${plainPort}`);
      try {
        await first.upsertUser("alice", {
          mechanism: "SCRAM-SHA-256",
          password: "alice-pw",
        });
        await first.createTopic("renewed", { partitions: 1 });
      } finally {
        await first.close();
      }
      const alice = await KafkaClient.connect(`127.0.0.1:${saslPort}`, {
        security: {
          sasl: { mechanism: "PLAIN", username: "alice", password: "alice-pw" },
        },
      });
      try {
        await alice.upsertUser("bob", {
          mechanism: "SCRAM-SHA-256",
          password: "bob-pw",
        });
      } finally {
        await alice.close();
      }

      await t.step(
        "SaslAuthenticate v1 reports the lifetime, and a request after it closes the connection",
        async () => {
          const conn = await RawConnection.open(saslPort);
          try {
            await conn.request(handshake("PLAIN"));
            const auth = authenticateReply(
              await conn.request(plain("alice", "alice-pw")),
            );
            assert.equal(auth.errorCode, ErrorCode.NONE);
            assert.equal(auth.sessionLifetimeMs, BigInt(LIFETIME_MS));
            assert.notEqual(await conn.request(metadata), "closed");
            await new Promise((r) => setTimeout(r, LIFETIME_MS + 200));
            assert.equal(await conn.request(metadata), "closed");
          } finally {
            conn.close();
          }
          await waitFor(
            "the broker to log the expiry",
            () =>
              Promise.resolve(
                /SASL session of User:alice expired/.test(broker.logs())
                  ? true
                  : undefined,
              ),
            { timeoutMs: 5_000 },
          );
        },
      );

      await t.step(
        "a renewal before the end keeps the connection serving past the first lifetime",
        async () => {
          const conn = await RawConnection.open(saslPort);
          try {
            await conn.request(handshake("PLAIN"));
            await conn.request(plain("alice", "alice-pw"));
            await new Promise((r) => setTimeout(r, LIFETIME_MS * 0.6));
            await conn.request(handshake("PLAIN"));
            const renewed = authenticateReply(
              await conn.request(plain("alice", "alice-pw")),
            );
            assert.equal(renewed.errorCode, ErrorCode.NONE);
            await new Promise((r) => setTimeout(r, LIFETIME_MS * 0.6));
            assert.notEqual(await conn.request(metadata), "closed");
          } finally {
            conn.close();
          }
        },
      );

      await t.step(
        "a renewal as another user, or in v0, is refused and the connection closed",
        async () => {
          const other = await rawExchange(saslPort, [
            handshake("PLAIN"),
            plain("alice", "alice-pw"),
            handshake("PLAIN"),
            plain("bob", "bob-pw"),
          ]);
          assert.notEqual(other, "closed");
          const [, , , refused, end] = other as Uint8Array[];
          assert.equal(
            authenticateReply(refused!).errorCode,
            ErrorCode.SASL_AUTHENTICATION_FAILED,
          );
          assert.equal(end?.length, 0, "the broker closes the connection");

          const v0 = await rawExchange(saslPort, [
            handshake("PLAIN"),
            plain("alice", "alice-pw"),
            handshake("PLAIN", 0),
          ]);
          assert.notEqual(v0, "closed");
          const [, , again, closed] = v0 as Uint8Array[];
          assert.equal(
            decodeResponse(ApiKey.SaslHandshake, 0, again!).body.errorCode,
            ErrorCode.ILLEGAL_SASL_STATE,
          );
          assert.equal(closed?.length, 0, "the broker closes the connection");
        },
      );

      await t.step(
        "kafkajs re-authenticates on its own and produces across several lifetimes",
        async () => {
          const kafka = new Kafka({
            clientId: "reauth-kafkajs",
            brokers: [`127.0.0.1:${saslPort}`],
            sasl: {
              mechanism: "scram-sha-256",
              username: "alice",
              password: "alice-pw",
            },
            // Renew when less than this is left of the session.
            reauthenticationThreshold: 1000,
            retry: { retries: 0 },
            logLevel: logLevel.NOTHING,
          });
          const producer = kafka.producer();
          await producer.connect();
          const expiredBefore =
            broker.logs().match(/SASL session of User:alice expired/g)
              ?.length ?? 0;
          try {
            for (let i = 0; i < 8; i++) {
              await producer.send({
                topic: "renewed",
                messages: [{ value: `m${i}` }],
              });
              await new Promise((r) => setTimeout(r, LIFETIME_MS / 2));
            }
          } finally {
            await producer.disconnect();
          }
          const expiredAfter =
            broker.logs().match(/SASL session of User:alice expired/g)
              ?.length ?? 0;
          assert.equal(expiredAfter, expiredBefore, "no session ran out");
          const client = await KafkaClient.connect(`127.0.0.1:${plainPort}`);
          try {
            assert.equal(await client.listOffsets("renewed", 0, -1n), 8n);
          } finally {
            await client.close();
          }
        },
      );
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
