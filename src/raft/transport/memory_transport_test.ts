/**
 * MemoryTransport carries application messages like TcpTransport: through
 * the codec, asynchronously, and only between reachable transports.
 */
import assert from "node:assert/strict";
import type { NodeId } from "../core/mod.ts";
import { MemoryNetwork } from "./memory_transport.ts";

Deno.test("MemoryTransport.sendApp delivers a copy asynchronously and drops what cannot reach", async () => {
  const net = new MemoryNetwork();
  const a = net.transport(1);
  const b = net.transport(2);
  const got: [NodeId, Uint8Array][] = [];
  await a.start({ messages: () => {}, app: () => {} });
  await b.start({
    messages: () => {},
    app: (from, data) => got.push([from, data]),
  });
  try {
    const data = new Uint8Array([1, 2, 3]);
    assert.equal(a.sendApp(2, data), true);
    assert.equal(got.length, 0, "not delivered inside sendApp");
    data[0] = 99; // the sender reusing its buffer must not change what arrives
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(got, [[1, new Uint8Array([1, 2, 3])]]);

    assert.equal(a.sendApp(7, data), false, "unknown node");
    net.cut(1, 2);
    assert.equal(a.sendApp(2, data), false, "cut link");
    assert.throws(
      () => a.sendApp(2, new Uint8Array(16 * 1024 * 1024 + 1)),
      RangeError,
    );
  } finally {
    await a.close();
    await b.close();
  }
});
