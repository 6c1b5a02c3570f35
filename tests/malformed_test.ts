// Hostile input on the Kafka port: each bad connection is closed on its own
// and the broker keeps serving real clients (checked with kcat -L).
import assert from "node:assert/strict";
import { removeDir, run, startBroker } from "./harness.ts";

async function sendAndExpectClose(port: number, bytes: Uint8Array) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => 0);
    const buf = new Uint8Array(1024);
    // The broker must close (read → null) or reset; it must not answer junk.
    const deadline = setTimeout(() => conn.close(), 10_000);
    let closed = false;
    try {
      closed = (await conn.read(buf)) === null;
    } catch {
      closed = true;
    } finally {
      clearTimeout(deadline);
    }
    assert.ok(closed, "broker closed the connection");
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the timeout above.
    }
  }
}

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length);
  out.set(body, 4);
  return out;
}

Deno.test("malformed frames close one connection and the broker serves on", async () => {
  const broker = await startBroker({ set: ["limits.max_request_size=1MiB"] });
  try {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    const cases: [string, Uint8Array][] = [
      ["absurd length", new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])],
      ["negative length", new Uint8Array([0xff, 0xff, 0xff, 0xfe])],
      [
        "over max_request_size",
        frame(new Uint8Array(2 * 1024 * 1024)),
      ],
      [
        "unknown api key",
        frame(new Uint8Array([0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff])),
      ],
      ["truncated header", frame(new Uint8Array([0, 3, 0]))],
      // Metadata v9 header, then a body that claims a huge topics array.
      [
        "truncated body",
        frame(
          new Uint8Array([
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
            0x0f,
          ]),
        ),
      ],
    ];
    for (let i = 0; i < 5; i++) {
      cases.push([
        `random frame ${i}`,
        frame(Uint8Array.from({ length: 200 }, rand)),
      ]);
    }
    for (const [name, bytes] of cases) {
      await sendAndExpectClose(broker.port, bytes).catch((err) => {
        throw new Error(`case "${name}": ${err.message}`);
      });
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
