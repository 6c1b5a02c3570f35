// Hostile input on the Kafka port: each bad connection is closed on its own
// and the broker keeps serving real clients (checked with kcat -L).
import assert from "node:assert/strict";
import { ApiKey } from "../src/protocol/mod.ts";
import { removeDir, run, startBroker } from "./harness.ts";

const CORRELATION_ID = 0x5eed;

/**
 * Sends `bytes` on a new connection and waits for the broker either to close
 * it (`null`) or to answer one whole frame (its correlation id).
 */
async function firstReply(port: number, bytes: Uint8Array) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 10_000);
  const received: number[] = [];
  try {
    await conn.write(bytes).catch(() => 0);
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      received.push(...buf.subarray(0, n));
      const dv = new DataView(Uint8Array.from(received).buffer);
      if (received.length >= 8 && received.length >= 4 + dv.getInt32(0)) {
        return dv.getInt32(4);
      }
    }
    assert.equal(received.length, 0, "nothing but whole frames is answered");
    return null;
  } finally {
    clearTimeout(deadline);
    if (!timedOut) conn.close();
    assert.ok(!timedOut, "the broker neither answered nor closed in 10 s");
  }
}

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length);
  out.set(body, 4);
  return out;
}

/** A request header v1 (null client id), so that only the body is junk. */
function header(apiKey: number, version: number): Uint8Array {
  const out = new Uint8Array(10);
  const dv = new DataView(out.buffer);
  dv.setInt16(0, apiKey);
  dv.setInt16(2, version);
  dv.setInt32(4, CORRELATION_ID);
  dv.setInt16(8, -1);
  return out;
}

Deno.test("malformed frames close one connection and the broker serves on", async () => {
  const broker = await startBroker({ set: ["limits.max_request_size=1MiB"] });
  try {
    let seed = 12345;
    // The top byte: the low bits of this generator repeat with a short period.
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const junk = (length: number) => Uint8Array.from({ length }, rand);
    const mustClose: [string, Uint8Array][] = [
      ["absurd length", new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])],
      ["negative length", new Uint8Array([0xff, 0xff, 0xff, 0xfe])],
      ["over max_request_size", frame(new Uint8Array(2 * 1024 * 1024))],
      [
        "unknown api key",
        frame(new Uint8Array([0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff])),
      ],
      ["truncated header", frame(new Uint8Array([0, 3, 0]))],
      // Metadata v9 header, then a body that claims a huge topics array.
      [
        "truncated body",
        frame(
          Uint8Array.of(
            0,
            3,
            0,
            9,
            0,
            0,
            0,
            7,
            0xff,
            0xff,
            0,
            0xff,
            0xff,
            0xff,
          ),
        ),
      ],
    ];
    for (let i = 0; i < 5; i++) {
      mustClose.push([`random frame ${i}`, frame(junk(200))]);
    }
    for (const [name, bytes] of mustClose) {
      const reply = await firstReply(broker.port, bytes).catch((err) => {
        throw new Error(`case "${name}": ${err.message}`);
      });
      assert.equal(reply, null, `case "${name}": the broker answered junk`);
    }

    // A real header before a random body: the body may happen to decode, so
    // an answer to it is fine; a hang or a crash is not. Produce (acks=0 is
    // never answered) and Fetch (a long poll) are left out for that reason.
    const versions: [number, number][] = [
      [ApiKey.Metadata, 8],
      [ApiKey.ListOffsets, 5],
      [ApiKey.CreateTopics, 4],
      [ApiKey.DeleteTopics, 3],
      [ApiKey.FindCoordinator, 2],
      [ApiKey.JoinGroup, 5],
      [ApiKey.SyncGroup, 3],
      [ApiKey.Heartbeat, 3],
      [ApiKey.LeaveGroup, 3],
      [ApiKey.OffsetCommit, 7],
      [ApiKey.OffsetFetch, 5],
      [ApiKey.DescribeGroups, 4],
      [ApiKey.DeleteGroups, 1],
      [ApiKey.InitProducerId, 1],
      [ApiKey.OffsetDelete, 0],
      [ApiKey.DescribeCluster, 1],
      [ApiKey.DescribeProducers, 0],
      [ApiKey.DescribeAcls, 1],
      [ApiKey.CreateAcls, 1],
      [ApiKey.DeleteAcls, 3],
    ];
    for (const [apiKey, version] of versions) {
      for (const length of [3, 40, 300]) {
        const bytes = frame(
          Uint8Array.of(...header(apiKey, version), ...junk(length)),
        );
        const reply = await firstReply(broker.port, bytes).catch((err) => {
          throw new Error(
            `api ${apiKey} v${version} with ${length} random bytes: ${err.message}`,
          );
        });
        if (reply !== null) assert.equal(reply, CORRELATION_ID);
      }
    }

    const list = await run("kcat", ["-b", broker.bootstrap, "-L"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(new TextDecoder().decode(list.stdout), /1 brokers:/);
    assert.match(broker.logs(), /closing connection/);
  } finally {
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
