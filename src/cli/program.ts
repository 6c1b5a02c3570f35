/**
 * The command tree (commander is imported here and nowhere else in raftq),
 * and the mapping of outcomes to exit codes: 0 ok, 1 error, 2 usage.
 */
import {
  Command,
  CommanderError,
  InvalidArgumentError,
  Option,
} from "commander";
import {
  ConnectionError,
  KafkaError,
  RequestTimeoutError,
} from "../client/mod.ts";
import { ConfigError } from "../config/mod.ts";
import { clusterStatus, reassign, transferLeader } from "./cluster.ts";
import { consume } from "./consume.ts";
import {
  deleteGroup,
  deleteOffsets,
  describeGroup,
  listGroups,
  resetOffsets,
} from "./group.ts";
import { BOOTSTRAP_ENV, type CliIo, CommandError } from "./io.ts";
import { produce } from "./produce.ts";
import { createUser, deleteUser, listUsers } from "./user.ts";
import { createAcls, deleteAcls, listAcls } from "./acl.ts";
import { top } from "./top.ts";
import { describeTransaction, listTransactions } from "./txn.ts";
import { TXN_STATE_IDS } from "../broker/mod.ts";
import { serve } from "./serve.ts";
import { alterConfig, brokerConfig } from "./configs.ts";
import {
  addPartitions,
  createTopic,
  deleteTopic,
  describeTopic,
  listTopics,
  trimPartition,
} from "./topic.ts";

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

const SCRAM_MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"];
/**
 * Kafka's TransactionState names, which ListTransactions filters on; a Dead
 * id is forgotten, so none is ever listed in that state.
 */
const TXN_STATES = Object.keys(TXN_STATE_IDS).filter((s) => s !== "Dead");

/** Failures that are the world's doing, shown as their message alone. */
function isExpected(error: unknown): error is Error {
  return error instanceof CommandError || error instanceof ConnectionError ||
    error instanceof RequestTimeoutError ||
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.AddrInUse;
}

function integerOption(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < min || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`Expected an integer of at least ${min}.`);
    }
    return n;
  };
}

function brokerListOption(value: string): number[] {
  const ids = value.split(",").map((x) => x.trim());
  if (ids.some((x) => !/^\d+$/.test(x) || Number(x) < 1)) {
    throw new InvalidArgumentError(
      'Expected broker ids separated by commas, e.g. "2,3,4".',
    );
  }
  return ids.map(Number);
}

function offsetOption(value: string): bigint {
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError("Expected an offset (0 or more).");
  }
  return BigInt(value);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function keyValue(value: string, previous: Record<string, string>) {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("Expected key=value.");
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function acksOption(value: string): -1 | 0 | 1 {
  if (value === "all" || value === "-1") return -1;
  if (value === "1") return 1;
  if (value === "0") return 0;
  throw new InvalidArgumentError("Expected all, 1 or 0.");
}

function buildProgram(io: CliIo): Command {
  const program = new Command("raftq")
    .description("A Multi-Raft message broker that speaks the Kafka protocol")
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
    });
  // Subcommands copy the settings above when created, so they must come after.
  const bootstrap = io.env[BOOTSTRAP_ENV] ?? "localhost:9092";
  const clientCommand = (parent: Command, name: string) =>
    parent.command(name).option(
      "--bootstrap <host:port>",
      `broker to connect to first (env ${BOOTSTRAP_ENV})`,
      bootstrap,
    ).option(
      "--command-config <file>",
      "Kafka client properties: security.protocol, sasl.mechanism, " +
        "sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location, ssl.key.location",
    );

  program.command("serve")
    .description("run a broker")
    .option("--config <file>", "YAML config file (default: built-in defaults)")
    .option("--node-id <id>", "node_id")
    .option("--port <n>", "bind_port, the Kafka listener (0: any free port)")
    .option("--data-dir <dir>", "data_dir")
    .option("--raft-port <n>", "raft_port")
    .option(
      "--peers <list>",
      'discovery.peers, "id@host:raft_port,..." (sets discovery.type static)',
    )
    .option("--set <key=value>", "set any config key (repeatable)", collect, [])
    .action((opts) => serve(io, opts));

  const topic = program.command("topic").description("manage topics");
  clientCommand(topic, "create")
    .description("create a topic")
    .argument("<name>")
    .option("--partitions <n>", "partition count", integerOption(1))
    .option("--replication-factor <n>", "replicas", integerOption(1))
    .option("--config <key=value>", "topic config (repeatable)", keyValue, {})
    .action((name, opts) => createTopic(io, name, opts));
  clientCommand(topic, "list")
    .description("list topic names")
    .action((opts) => listTopics(io, opts));
  clientCommand(topic, "describe")
    .description("show a topic's partitions, leaders, replicas and configs")
    .argument("<name>")
    .option("--all-configs", "also list every config with its source")
    .action((name, opts) => describeTopic(io, name, opts));
  clientCommand(topic, "alter-config")
    .description("set or remove a topic's own configs")
    .argument("<name>")
    .option("--set <key=value>", "set a config (repeatable)", keyValue, {})
    .option("--delete <key>", "remove a config (repeatable)", collect, [])
    .action((name, opts) => alterConfig(io, { type: "topic", name }, opts));
  clientCommand(topic, "add-partitions")
    .description("raise a topic's partition count")
    .argument("<name>")
    .requiredOption("--count <n>", "the new partition count", integerOption(1))
    .action((name, opts) => addPartitions(io, name, opts));
  clientCommand(topic, "trim")
    .description("delete a partition's records below an offset")
    .argument("<name>")
    .argument("<partition>", "partition index", integerOption(0))
    .requiredOption(
      "--before <offset>",
      "the partition's new first offset (at most its high watermark)",
      offsetOption,
    )
    .action((name, partition, opts) =>
      trimPartition(io, name, partition, opts)
    );
  clientCommand(topic, "delete")
    .description("delete a topic")
    .argument("<name>")
    .action((name, opts) => deleteTopic(io, name, opts));

  clientCommand(program, "produce")
    .description("send each line of stdin as one message")
    .argument("<topic>")
    .option("--key <key>", "key of every message")
    .option("--acks <acks>", "all, 1 or 0", acksOption, -1)
    .option(
      "--partition <p>",
      "partition (default: by key, else spread)",
      integerOption(0),
    )
    .action((name, opts) => produce(io, name, opts));

  clientCommand(program, "consume")
    .description("print message values, one per line")
    .argument("<topic>")
    .option("--from-beginning", "start at the earliest offset, not the end")
    .option("--max-messages <n>", "exit after n messages", integerOption(1))
    .addOption(
      new Option("--partition <p>", "only this partition")
        .argParser(integerOption(0)).conflicts("group"),
    )
    .option(
      "--group <id>",
      "consume as a member of this consumer group, from its committed offsets",
    )
    .action((name, opts) => consume(io, name, opts));

  const group = program.command("group").description("manage consumer groups");
  clientCommand(group, "list")
    .description("list consumer groups and their states")
    .action((opts) => listGroups(io, opts));
  clientCommand(group, "describe")
    .description("show a group's members, offsets and lag per partition")
    .argument("<group>")
    .action((id, opts) => describeGroup(io, id, opts));
  const resetTargets = ["toEarliest", "toLatest", "toOffset"];
  const resetTarget = (flag: string, description: string) => {
    const option = new Option(flag, description);
    return option.conflicts(
      resetTargets.filter((t) => t !== option.attributeName()),
    );
  };
  clientCommand(group, "reset-offsets")
    .description("set a group's offsets of a topic (group without members)")
    .argument("<group>")
    .requiredOption("--topic <topic>", "topic whose offsets to reset")
    .addOption(resetTarget("--to-earliest", "to each partition's start"))
    .addOption(resetTarget("--to-latest", "to each partition's end"))
    .addOption(
      resetTarget("--to-offset <n>", "to this offset (kept within the log)")
        .argParser(offsetOption),
    )
    .action((id, opts, command: Command) => {
      if (!opts.toEarliest && !opts.toLatest && opts.toOffset === undefined) {
        command.error(
          "error: one of --to-earliest, --to-latest, --to-offset is required",
        );
      }
      return resetOffsets(io, id, opts);
    });
  clientCommand(group, "delete")
    .description("delete a group without members, with its offsets")
    .argument("<group>")
    .action((id, opts) => deleteGroup(io, id, opts));
  clientCommand(group, "delete-offsets")
    .description(
      "delete a group's committed offsets of a topic (not of a topic its members subscribe to)",
    )
    .argument("<group>")
    .requiredOption("--topic <topic>", "topic whose offsets to delete")
    .option(
      "--partition <p>",
      "only this partition (default: all)",
      integerOption(0),
    )
    .action((id, opts) => deleteOffsets(io, id, opts));

  const txn = program.command("txn").description(
    "inspect transactional producers and their open transactions",
  );
  clientCommand(txn, "list")
    .description("list transactional ids, each with its producer and state")
    .option(
      "--state <state>",
      `only in this state (${TXN_STATES.join(", ")}); repeatable`,
      (value: string, previous: string[]) => {
        if (!TXN_STATES.includes(value)) {
          throw new InvalidArgumentError(
            `Expected one of ${TXN_STATES.join(", ")}.`,
          );
        }
        return collect(value, previous);
      },
      [],
    )
    .option(
      "--producer-id <id>",
      "only of this producer id; repeatable",
      (value: string, previous: bigint[] = []) => [
        ...previous,
        BigInt(integerOption(0)(value)),
      ],
    )
    .option(
      "--duration-ms <ms>",
      "only transactions open for longer than this",
      integerOption(0),
    )
    .action((opts) => listTransactions(io, opts));
  clientCommand(txn, "describe")
    .description(
      "show a transactional id's producer, state and the partitions of its open transaction",
    )
    .argument("<transactional-id>")
    .action((id, opts) => describeTransaction(io, id, opts));

  const broker = program.command("broker").description("manage brokers");
  clientCommand(broker, "config")
    .description(
      "show a broker's configs with their sources; with --set or --delete, " +
        "alter the broker defaults of topic configs (log.retention.ms, " +
        "compression.type, ...) for --broker or for every broker",
    )
    .option(
      "--broker <id>",
      "this broker (default: the one connected to when showing, every " +
        "broker when altering)",
      integerOption(1),
    )
    .option("--set <key=value>", "set a config (repeatable)", keyValue, {})
    .option("--delete <key>", "remove a config (repeatable)", collect, [])
    .action((opts) => brokerConfig(io, opts));

  const user = program.command("user").description(
    "manage SASL/SCRAM users (before the first exists, only from loopback)",
  );
  const mechanism = () =>
    new Option("--mechanism <m>", "SCRAM mechanism").choices(
      SCRAM_MECHANISMS,
    );
  clientCommand(user, "create")
    .description("create a user, or replace its credential of --mechanism")
    .argument("<name>")
    .addOption(mechanism().default("SCRAM-SHA-256"))
    .option("--password-stdin", "read the password from stdin")
    .action((name, opts) => createUser(io, name, opts));
  clientCommand(user, "delete")
    .description("delete a user (or only its credential of --mechanism)")
    .argument("<name>")
    .addOption(mechanism())
    .action((name, opts) => deleteUser(io, name, opts));
  clientCommand(user, "list")
    .description("list users and their SCRAM mechanisms")
    .action((opts) => listUsers(io, opts));

  const acl = program.command("acl").description(
    "manage ACLs (enforced with authorization.enabled)",
  );
  const aclResource = (command: Command, patterns: string[]) =>
    command
      .option("--topic <name>", "a topic (or a prefix, or * for all)")
      .option("--group <id>", "a consumer group (or a prefix, or *)")
      .option("--cluster", "the cluster")
      .option(
        "--transactional-id <id>",
        "a transactional id (or a prefix, or *)",
      )
      .addOption(
        new Option("--resource-pattern-type <type>", "how the name matches")
          .choices(patterns),
      );
  const aclPrincipals = (command: Command) =>
    command
      .option(
        "--allow-principal <p>",
        "principal to allow, e.g. User:alice or User:* (repeatable)",
        collect,
        [],
      )
      .option(
        "--deny-principal <p>",
        "principal to deny (repeatable)",
        collect,
        [],
      )
      .option(
        "--allow-host <h>",
        "host the allow applies to (default: any)",
        collect,
        [],
      )
      .option(
        "--deny-host <h>",
        "host the deny applies to (default: any)",
        collect,
        [],
      )
      .option(
        "--operation <op>",
        "Read, Write, Create, Delete, Alter, Describe, ClusterAction, " +
          "DescribeConfigs, AlterConfigs, IdempotentWrite or All (repeatable)",
        collect,
        [],
      );
  aclPrincipals(
    aclResource(clientCommand(acl, "create"), ["literal", "prefixed"]),
  )
    .description(
      "add ACLs: each principal and host, for each operation (default All)",
    )
    .action((opts) =>
      createAcls(io, { resourcePatternType: "literal", ...opts })
    );
  aclResource(clientCommand(acl, "list"), [
    "literal",
    "prefixed",
    "any",
    "match",
  ])
    .description(
      "list ACLs (all, or a resource's; --resource-pattern-type match: those that apply to it)",
    )
    .option("--principal <p>", "only this principal's")
    .action((opts) => listAcls(io, opts));
  aclPrincipals(
    aclResource(clientCommand(acl, "delete"), ["literal", "prefixed", "any"]),
  )
    .description(
      "delete a resource's ACLs (only the principals' and operations' named, when some are)",
    )
    .action((opts) => deleteAcls(io, opts));

  clientCommand(program, "top")
    .description(
      "show records per second into each topic, redrawn every interval",
    )
    .option(
      "--interval-ms <ms>",
      "time between samples",
      integerOption(100),
      2_000,
    )
    .option("--once", "print one table (two samples) and exit")
    .option("--internal", "also show internal topics (__consumer_offsets)")
    .action((opts) => top(io, opts));

  const cluster = program.command("cluster").description(
    "inspect the cluster and place partitions",
  );
  clientCommand(cluster, "status")
    .description(
      "show brokers, the controller and partition replicas; LAG lists each " +
        "replica as broker:entries, the Raft log entries its log is behind " +
        "the leader's (0 = caught up)",
    )
    .action((opts) => clusterStatus(io, opts));
  clientCommand(cluster, "reassign")
    .description(
      "move a partition, or every partition of a topic, to other brokers (Raft membership changes, one at a time)",
    )
    .argument("<topic>")
    .argument(
      "[partition]",
      "partition index (all partitions when left out)",
      integerOption(0),
    )
    .addOption(
      new Option("--replicas <ids>", "target brokers, the first leads")
        .argParser(brokerListOption).conflicts("cancel"),
    )
    .option("--cancel", "cancel the partition's running move")
    .option("--wait", "return once the move is done")
    .option(
      "--timeout-ms <ms>",
      "how long --wait waits",
      integerOption(1),
      120_000,
    )
    .action((topic, partition, opts) => reassign(io, topic, partition, opts));
  clientCommand(cluster, "transfer-leader")
    .description(
      "make a replica the partition's preferred leader and wait until it leads",
    )
    .argument("<topic>")
    .argument("<partition>", "partition index", integerOption(0))
    .argument("<broker>", "node id of a replica", integerOption(1))
    .option("--timeout-ms <ms>", "how long to wait", integerOption(1), 30_000)
    .action((topic, partition, broker, opts) =>
      transferLeader(io, topic, partition, broker, opts)
    );
  return program;
}

/** Runs the command line `args` (without the program name); returns the exit code. */
export async function runCli(
  args: readonly string[],
  io: CliIo,
): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...args], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version"
      ) return EXIT_OK;
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      io.stderr(`raftq: ${error.message}\n`);
      return EXIT_ERROR;
    }
    if (error instanceof KafkaError) {
      io.stderr(`raftq: ${error.name}: ${error.message}\n`);
      return EXIT_ERROR;
    }
    if (isExpected(error)) {
      io.stderr(`raftq: ${error.message}\n`);
      return EXIT_ERROR;
    }
    // Anything else is a bug in raftq: the stack is what a report needs.
    io.stderr(`raftq: internal error: ${(error as Error)?.stack ?? error}\n`);
    return EXIT_ERROR;
  }
}
