/**
 * ACLs end to end: a broker with authorization.enabled and User:admin as
 * its super user, users made with `raftq user create`, ACLs managed with
 * `raftq acl create|list|delete` as admin, and real clients (kafkajs and
 * kcat) authenticated with SCRAM whose produce, consume, group joins and
 * topic changes are allowed or refused as the ACLs say.
 */
import assert from "node:assert/strict";
import { Kafka, type KafkaConfig, logLevel } from "kafkajs";
import { KafkaClient, type KafkaError } from "../src/client/mod.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { freePorts } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  kcatProduce,
  raftq,
  removeDir,
  startBroker,
} from "./harness.ts";

const [plainPort, saslPort] = freePorts(2) as [number, number];
const passwords: Record<string, string> = {
  admin: "admin-pw",
  alice: "alice-pw",
  bob: "bob-pw",
};

function kafkajs(user: string): Kafka {
  const config: KafkaConfig = {
    clientId: `acl-test-${user}`,
    brokers: [`127.0.0.1:${saslPort}`],
    sasl: {
      mechanism: "scram-sha-256",
      username: user,
      password: passwords[user]!,
    },
    retry: { retries: 1, initialRetryTime: 100 },
    logLevel: logLevel.NOTHING,
  };
  return new Kafka(config);
}

function kcatAs(user: string): string[] {
  return [
    "-X",
    "security.protocol=SASL_PLAINTEXT",
    "-X",
    "sasl.mechanisms=SCRAM-SHA-512",
    "-X",
    `sasl.username=${user}`,
    "-X",
    `sasl.password=${passwords[user]}`,
  ];
}

/** Runs `raftq <args>` as admin over SASL; returns stdout, failing on an error. */
async function asAdmin(
  properties: string,
  args: string[],
  stdin?: string,
): Promise<string> {
  const out = await raftq(
    [
      ...args,
      "--bootstrap",
      `127.0.0.1:${saslPort}`,
      "--command-config",
      properties,
    ],
    stdin === undefined ? {} : { stdin: new TextEncoder().encode(stdin) },
  );
  assert.equal(out.code, 0, `raftq ${args.join(" ")}: ${out.stderr}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * Did a kafkajs call fail on a *_AUTHORIZATION_FAILED code? kafkajs keeps
 * the code's name in `type`, nests per-topic errors in `errors`, and where
 * it rewraps an error as non-retriable keeps only the code's message (its
 * table's "... authorization failed").
 */
function refusedByAcl(e: unknown): boolean {
  const error = e as { type?: string; message?: string; errors?: unknown[] };
  return /AUTHORIZATION_FAILED$/.test(error.type ?? "") ||
    /authorization failed/i.test(error.message ?? "") ||
    (error.errors ?? []).some(refusedByAcl);
}

async function produceAs(user: string, topic: string, value: string) {
  const producer = kafkajs(user).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ value }] });
  } finally {
    await producer.disconnect();
  }
}

/** Reads `count` messages of `topic` as a member of `groupId`. */
async function consumeAs(
  user: string,
  groupId: string,
  topic: string,
  count: number,
): Promise<string[]> {
  const consumer = kafkajs(user).consumer({ groupId });
  const values: string[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
      consumer.run({
        eachMessage: ({ message }) => {
          values.push(message.value?.toString() ?? "");
          if (values.length >= count) resolve();
          return Promise.resolve();
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

Deno.test({
  name:
    "ACLs: raftq acl create/list/delete as the super user allow and refuse produce, consume, groups, transactions, topic creation and deletion of kafkajs and kcat",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const broker = await startBroker({
      set: [
        `listeners=PLAINTEXT://127.0.0.1:${plainPort},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        "authorization.enabled=true",
        "authorization.super_users=User:admin",
      ],
    });
    const properties = `${broker.dataDir}/admin.properties`;
    try {
      await Deno.writeTextFile(
        properties,
        [
          "security.protocol=SASL_PLAINTEXT",
          "sasl.mechanism=SCRAM-SHA-256",
          "sasl.username=admin",
          `sasl.password=${passwords.admin}`,
        ].join("\n"),
      );

      await t.step(
        "admin is created from loopback, then creates the other users and a topic",
        async () => {
          const first = await raftq(
            [
              "user",
              "create",
              "admin",
              "--password-stdin",
              "--bootstrap",
              `127.0.0.1:${plainPort}`,
            ],
            { stdin: new TextEncoder().encode(passwords.admin) },
          );
          assert.equal(first.code, 0, first.stderr);
          for (const user of ["alice", "bob"]) {
            for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"]) {
              await asAdmin(properties, [
                "user",
                "create",
                user,
                "--mechanism",
                mechanism,
                "--password-stdin",
              ], passwords[user]);
            }
          }
          await asAdmin(properties, ["topic", "create", "orders"]);
          await asAdmin(properties, ["topic", "create", "payroll"]);
        },
      );

      await t.step(
        "without ACLs every user but the super user is refused",
        async () => {
          await assert.rejects(
            produceAs("alice", "orders", "early"),
            refusedByAcl,
          );
        },
      );

      await t.step(
        "raftq acl create grants alice writes to orders, bob reads of ord* and group readers",
        async () => {
          const created = await asAdmin(properties, [
            "acl",
            "create",
            "--topic",
            "orders",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--operation",
            "Describe",
          ]);
          assert.match(created, /Created 2 ACL\(s\)/);
          assert.match(
            created,
            /topic\s+literal\s+orders\s+User:alice\s+\*\s+write\s+allow/,
          );
          await asAdmin(properties, [
            "acl",
            "create",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
            "--allow-principal",
            "User:bob",
            "--operation",
            "read",
          ]);
          await asAdmin(properties, [
            "acl",
            "create",
            "--group",
            "readers",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
          ]);
        },
      );

      await t.step(
        "alice produces to orders with kafkajs and kcat",
        async () => {
          await produceAs("alice", "orders", "first");
          await kcatProduce(
            `127.0.0.1:${saslPort}`,
            "orders",
            ["second"],
            kcatAs("alice"),
          );
        },
      );

      await t.step(
        "alice is refused a topic she has no ACL on, and topic creation",
        async () => {
          await assert.rejects(
            produceAs("alice", "payroll", "x"),
            refusedByAcl,
          );
          const admin = kafkajs("alice").admin();
          await admin.connect();
          try {
            await assert.rejects(
              admin.createTopics({ topics: [{ topic: "alice-topic" }] }),
              refusedByAcl,
            );
          } finally {
            await admin.disconnect();
          }
        },
      );

      await t.step(
        "bob reads orders with kcat and in group readers with kafkajs, and may not write",
        async () => {
          const read = await kcatConsume(
            `127.0.0.1:${saslPort}`,
            "orders",
            kcatAs("bob"),
          );
          assert.deepEqual(read.get(0)?.map((r) => r.value), [
            "first",
            "second",
          ]);
          assert.deepEqual(
            await consumeAs("bob", "readers", "orders", 2),
            ["first", "second"],
          );
          await assert.rejects(
            produceAs("bob", "orders", "x"),
            refusedByAcl,
          );
        },
      );

      await t.step("bob may not join a group he has no ACL on", async () => {
        // kafkajs tries every broker for the coordinator and then reports
        // only that none was found, so the code is checked with raftq's client.
        await assert.rejects(
          consumeAs("bob", "others", "orders", 1),
          /group coordinator/,
        );
        const bob = await KafkaClient.connect(`127.0.0.1:${saslPort}`, {
          security: {
            sasl: {
              mechanism: "SCRAM-SHA-256",
              username: "bob",
              password: passwords.bob!,
            },
          },
        });
        try {
          await assert.rejects(
            bob.describeGroup("others"),
            (e: KafkaError) => e.code === ErrorCode.GROUP_AUTHORIZATION_FAILED,
          );
        } finally {
          await bob.close();
        }
      });

      await t.step(
        "raftq acl list shows every ACL, or those that apply to a topic",
        async () => {
          const all = await asAdmin(properties, ["acl", "list"]);
          assert.equal(all.trim().split("\n").length, 1 + 4, all);
          const orders = await asAdmin(properties, [
            "acl",
            "list",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "match",
          ]);
          assert.match(orders, /prefixed\s+ord\s+User:bob/);
          assert.match(orders, /literal\s+orders\s+User:alice/);
          assert.doesNotMatch(orders, /readers/);
          const bobs = await asAdmin(properties, [
            "acl",
            "list",
            "--principal",
            "User:bob",
          ]);
          assert.equal(bobs.trim().split("\n").length, 1 + 2, bobs);
        },
      );

      await t.step("a deny ACL overrides bob's allow", async () => {
        await asAdmin(properties, [
          "acl",
          "create",
          "--topic",
          "orders",
          "--deny-principal",
          "User:bob",
          "--operation",
          "Read",
        ]);
        await assert.rejects(
          consumeAs("bob", "readers", "orders", 1),
          refusedByAcl,
        );
      });

      await t.step(
        "raftq acl delete removes alice's ACLs, and her writes are refused again",
        async () => {
          const deleted = await asAdmin(properties, [
            "acl",
            "delete",
            "--topic",
            "orders",
            "--allow-principal",
            "User:alice",
          ]);
          assert.match(deleted, /Deleted 2 ACL\(s\)/);
          await assert.rejects(
            produceAs("alice", "orders", "late"),
            refusedByAcl,
          );
          const left = await asAdmin(properties, ["acl", "list"]);
          assert.doesNotMatch(left, /User:alice/);
        },
      );

      await t.step(
        "bob may delete a topic only once an ACL grants him Delete on it",
        async () => {
          await asAdmin(properties, ["topic", "create", "scratch"]);
          const admin = kafkajs("bob").admin();
          await admin.connect();
          try {
            await assert.rejects(
              admin.deleteTopics({ topics: ["scratch"], timeout: 5_000 }),
              refusedByAcl,
            );
            await asAdmin(properties, [
              "acl",
              "create",
              "--topic",
              "scratch",
              "--allow-principal",
              "User:bob",
              "--operation",
              "Delete",
            ]);
            await admin.deleteTopics({ topics: ["scratch"], timeout: 5_000 });
          } finally {
            await admin.disconnect();
          }
          const left = await asAdmin(properties, ["topic", "list"]);
          assert.doesNotMatch(left, /scratch/);
        },
      );

      await t.step(
        "a user who is not a super user may not manage ACLs",
        async () => {
          const aliceProperties = `${broker.dataDir}/alice.properties`;
          await Deno.writeTextFile(
            aliceProperties,
            (await Deno.readTextFile(properties))
              .replace("username=admin", "username=alice")
              .replace(passwords.admin!, passwords.alice!),
          );
          const out = await raftq([
            "acl",
            "create",
            "--topic",
            "payroll",
            "--allow-principal",
            "User:alice",
            "--bootstrap",
            `127.0.0.1:${saslPort}`,
            "--command-config",
            aliceProperties,
          ]);
          assert.notEqual(out.code, 0);
          assert.match(out.stderr, /CLUSTER_AUTHORIZATION_FAILED|cluster/i);
        },
      );

      await t.step(
        "alice's transactions need Write on her transactional id, and ListTransactions and DescribeTransactions show it only to those who may describe it",
        async () => {
          const producer = kafkajs("alice").producer({
            transactionalId: "alice-tx",
            idempotent: true,
            maxInFlightRequests: 1,
          });
          await assert.rejects(producer.connect(), refusedByAcl);
          for (
            const grant of [
              ["--transactional-id", "alice-tx"],
              ["--topic", "payroll"],
            ]
          ) {
            await asAdmin(properties, [
              "acl",
              "create",
              ...grant,
              "--allow-principal",
              "User:alice",
              "--operation",
              "Write",
            ]);
          }
          await producer.connect();
          try {
            const txn = await producer.transaction();
            await txn.send({ topic: "payroll", messages: [{ value: "tx" }] });
            await txn.commit();
          } finally {
            await producer.disconnect();
          }
          const txnCli = async (user: string, args: string[]) => {
            const file = `${broker.dataDir}/${user}-txn.properties`;
            await Deno.writeTextFile(
              file,
              (await Deno.readTextFile(properties))
                .replace("username=admin", `username=${user}`)
                .replace(passwords.admin!, passwords[user]!),
            );
            return await raftq([
              "txn",
              ...args,
              "--bootstrap",
              `127.0.0.1:${saslPort}`,
              "--command-config",
              file,
            ]);
          };
          // Write implies Describe, as in Kafka.
          const listed = await txnCli("alice", ["list"]);
          assert.match(new TextDecoder().decode(listed.stdout), /alice-tx/);
          const hidden = await txnCli("bob", ["list"]);
          assert.equal(hidden.code, 0, hidden.stderr);
          assert.doesNotMatch(
            new TextDecoder().decode(hidden.stdout),
            /alice-tx/,
          );
          const refused = await txnCli("bob", ["describe", "alice-tx"]);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /TRANSACTIONAL_ID_AUTHORIZATION_FAILED/);
          assert.match(
            await asAdmin(properties, ["txn", "describe", "alice-tx"]),
            /alice-tx\s+\d+\s+\d+\s+CompleteCommit/,
          );
        },
      );
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
