// Idempotent producer end to end: a TCP proxy between an idempotent kafkajs
// producer and the broker drops some Produce responses, so the producer
// times out and retries batches the broker already wrote. Each message must
// still be in the log exactly once, and a restart must keep the state.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { removeDir, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;
const PRODUCE = 0;

/**
 * Forwards bytes both ways, but swallows the response to every `dropEvery`th
 * Produce request (matched by correlation id).
 */
function startProxy(target: number, dropEvery: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let produced = 0;
  let dropped = 0;
  const pipeFrames = async (
    from: Deno.Conn,
    to: Deno.Conn,
    onFrame: (frame: Uint8Array) => boolean,
  ) => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await from.read(chunk);
        if (n === null) break;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        while (buf.length >= 4) {
          const size = new DataView(buf.buffer, buf.byteOffset).getInt32(0);
          if (buf.length < 4 + size) break;
          const frame = buf.slice(0, 4 + size);
          buf = buf.slice(4 + size);
          if (onFrame(frame)) {
            let done = 0;
            while (done < frame.length) {
              done += await to.write(frame.subarray(done));
            }
          }
        }
      }
    } catch {
      // Either side closed.
    }
    try {
      to.close();
    } catch {
      // Already closed.
    }
  };
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: "127.0.0.1",
        port: target,
      });
      conns.push(client, server);
      const drop = new Set<number>();
      pipeFrames(client, server, (frame) => {
        const v = new DataView(frame.buffer);
        if (v.getInt16(4) === PRODUCE && ++produced % dropEvery === 0) {
          drop.add(v.getInt32(8));
        }
        return true;
      });
      pipeFrames(server, client, (frame) => {
        const correlationId = new DataView(frame.buffer).getInt32(4);
        if (!drop.delete(correlationId)) return true;
        dropped++;
        return false;
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    dropped: () => dropped,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

Deno.test("an idempotent kafkajs producer whose responses are lost writes each message once", async () => {
  const broker = await startBroker();
  // Metadata points clients at the broker itself; the proxy must carry the
  // produce traffic, so the broker advertises the proxy's port.
  const proxy = startProxy(broker.port, 3);
  await broker.stop();
  const proxied = await startBroker({
    dataDir: broker.dataDir,
    port: broker.port,
    set: [`advertised_port=${proxy.port}`],
  });
  const kafka = new Kafka({
    clientId: "idem-e2e",
    brokers: [`127.0.0.1:${proxy.port}`],
    logLevel: logLevel.NOTHING,
    requestTimeout: 1000,
    retry: { retries: 10, initialRetryTime: 50 },
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
  });
  const direct = new Kafka({
    clientId: "idem-check",
    brokers: [`127.0.0.1:${proxied.port}`],
    logLevel: logLevel.NOTHING,
  });
  const admin = direct.admin();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "idem", numPartitions: 1 }],
      waitForLeaders: true,
    });
    await producer.connect();
    for (let i = 0; i < 12; i++) {
      await producer.send({
        topic: "idem",
        messages: Array.from({ length: 10 }, (_, j) => ({
          value: `m${i * 10 + j}`,
        })),
      });
    }
    assert.ok(proxy.dropped() >= 3, `responses dropped: ${proxy.dropped()}`);
    const [offsets] = await admin.fetchTopicOffsets("idem");
    assert.equal(offsets!.high, "120", "120 messages, no duplicates");
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect();
    proxy.close();
    await proxied.stop();
    await removeDir(broker.dataDir);
  }
});
