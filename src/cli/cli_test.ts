/**
 * The command line run in-process with captured output: exit codes for help,
 * usage errors, config errors and unreachable brokers, and stdin batching.
 * Commands against a live broker are covered in src/client/client_test.ts.
 */
import assert from "node:assert/strict";
import { type CliIo, EXIT_ERROR, EXIT_OK, EXIT_USAGE, runCli } from "./mod.ts";
import { lineBatches } from "./produce.ts";

function captureIo(
  opts: { env?: Record<string, string>; stdin?: string } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdin: ReadableStream.from([new TextEncoder().encode(opts.stdin ?? "")]),
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: opts.env ?? {},
    interrupt: new AbortController().signal,
  };
  return { io, out: () => out.join(""), err: () => err.join("") };
}

const never = new AbortController().signal;

/** A port nothing listens on: bound, then released. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("runCli --help prints usage and exits 0", async () => {
  const c = captureIo();
  assert.equal(await runCli(["--help"], c.io), EXIT_OK);
  assert.match(c.out(), /Usage: raftq/);
  assert.match(c.out(), /serve/);
  const sub = captureIo();
  assert.equal(await runCli(["topic", "create", "--help"], sub.io), EXIT_OK);
  assert.match(sub.out(), /--partitions <n>/);
});

Deno.test("runCli exits 2 on an unknown command or option", async () => {
  const c = captureIo();
  assert.equal(await runCli(["serv"], c.io), EXIT_USAGE);
  assert.match(c.err(), /unknown command 'serv'/);
  assert.equal(
    await runCli(["serve", "--prot", "1"], captureIo().io),
    EXIT_USAGE,
  );
});

Deno.test("runCli exits 2 on a missing argument or a bad option value", async () => {
  assert.equal(await runCli(["topic", "create"], captureIo().io), EXIT_USAGE);
  const c = captureIo();
  assert.equal(await runCli(["produce", "t", "--acks", "2"], c.io), EXIT_USAGE);
  assert.match(c.err(), /Expected all, 1 or 0/);
  assert.equal(
    await runCli(["topic", "create", "t", "--partitions", "x"], captureIo().io),
    EXIT_USAGE,
  );
});

Deno.test("runCli serve prints every config problem and exits 1", async () => {
  const c = captureIo({
    env: { RAFTQ_RAFT__ELECTON_RTT: "3", RAFTQ_BOOTSTRAP: "localhost:9092" },
  });
  const code = await runCli([
    "serve",
    "--port",
    "99999",
    "--set",
    "discovery.type=x",
  ], c.io);
  assert.equal(code, EXIT_ERROR);
  assert.match(c.err(), /Invalid configuration \(3 problems\)/);
  assert.match(
    c.err(),
    /bind_port: "99999" is not valid \(from the command line\)/,
  );
  assert.match(c.err(), /did you mean RAFTQ_RAFT__ELECTION_RTT\?/);
  assert.match(c.err(), /discovery\.type: "x"/);
});

Deno.test("runCli serve exits 1 when the given config file is missing", async () => {
  const c = captureIo();
  assert.equal(
    await runCli(["serve", "--config", "/nonexistent.yaml"], c.io),
    EXIT_ERROR,
  );
  assert.match(c.err(), /\/nonexistent\.yaml: cannot read the config file/);
});

Deno.test("runCli client commands exit 1 when no broker answers", async () => {
  const port = closedPort();
  const c = captureIo({ env: { RAFTQ_BOOTSTRAP: `127.0.0.1:${port}` } });
  assert.equal(await runCli(["topic", "list"], c.io), EXIT_ERROR);
  assert.match(
    c.err(),
    new RegExp(`No broker reachable at 127\\.0\\.0\\.1:${port}`),
  );
  const flag = captureIo();
  assert.equal(
    await runCli(
      ["topic", "list", "--bootstrap", `127.0.0.1:${port}`],
      flag.io,
    ),
    EXIT_ERROR,
  );
});

Deno.test("lineBatches groups the lines of one read and keeps a final partial line", async () => {
  const encoder = new TextEncoder();
  const input = ReadableStream.from([
    encoder.encode("a\r\nb\n"),
    encoder.encode("c\nd"),
    encoder.encode("e"),
  ]);
  const groups: string[][] = [];
  for await (const group of lineBatches(input, never)) groups.push(group);
  assert.deepEqual(groups, [["a", "b"], ["c"], ["de"]]);
});

Deno.test("lineBatches splits a large read at the record bound", async () => {
  const input = ReadableStream.from([
    new TextEncoder().encode("x\n".repeat(25_000)),
  ]);
  const sizes: number[] = [];
  for await (const group of lineBatches(input, never)) {
    sizes.push(group.length);
  }
  assert.deepEqual(sizes, [10_000, 10_000, 5_000]);
});

Deno.test("lineBatches ends the input when stopped, keeping what was read", async () => {
  const stop = new AbortController();
  let pull = 0;
  // An endless source, as a terminal is until the user interrupts.
  const input = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pull++ === 0) controller.enqueue(new TextEncoder().encode("first\n"));
    },
  });
  const groups: string[][] = [];
  for await (const group of lineBatches(input, stop.signal)) {
    groups.push(group);
    stop.abort();
  }
  assert.deepEqual(groups, [["first"]]);
});

Deno.test("runCli exits 2 when reset-offsets has no target or two, or consume mixes --group and --partition", async () => {
  const none = captureIo();
  assert.equal(
    await runCli(["group", "reset-offsets", "g", "--topic", "t"], none.io),
    EXIT_USAGE,
  );
  assert.match(none.err(), /one of --to-earliest, --to-latest, --to-offset/);
  const two = captureIo();
  assert.equal(
    await runCli([
      "group",
      "reset-offsets",
      "g",
      "--topic",
      "t",
      "--to-latest",
      "--to-offset",
      "3",
    ], two.io),
    EXIT_USAGE,
  );
  assert.match(two.err(), /cannot be used with/);
  assert.equal(
    await runCli(
      ["consume", "t", "--group", "g", "--partition", "0"],
      captureIo().io,
    ),
    EXIT_USAGE,
  );
});

Deno.test("raftq acl create names what is missing or unknown before it connects", async () => {
  const bootstrap = ["--bootstrap", `127.0.0.1:${closedPort()}`];
  const cases: [string[], RegExp][] = [
    [["--allow-principal", "User:a"], /Name the resource: --topic/],
    [
      ["--topic", "t", "--group", "g", "--allow-principal", "User:a"],
      /Give one resource/,
    ],
    [["--topic", "t"], /--allow-principal or --deny-principal/],
    [
      ["--topic", "t", "--allow-principal", "User:a", "--operation", "Fly"],
      /Unknown --operation "Fly": use one of all, read/,
    ],
  ];
  for (const [args, expected] of cases) {
    const c = captureIo();
    assert.equal(
      await runCli(["acl", "create", ...args, ...bootstrap], c.io),
      EXIT_ERROR,
      args.join(" "),
    );
    assert.match(c.err(), expected);
  }
  const usage = captureIo();
  assert.equal(
    await runCli(
      ["acl", "delete", "--topic", "t", "--resource-pattern-type", "match"],
      usage.io,
    ),
    EXIT_USAGE,
    "match only lists",
  );
});
