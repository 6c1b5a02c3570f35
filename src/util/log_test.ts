/**
 * createLogger's lines, read from an injected sink at a fixed time: the
 * envelope (time, level, broker, message) and the fields in both formats,
 * and the level filter.
 */
import assert from "node:assert/strict";
import { createLogger, type LoggerOptions } from "./log.ts";

const NOW = new Date("2026-12-06T12:00:00.000Z");

function capture(opts: Pick<LoggerOptions, "format" | "level">) {
  const lines: string[] = [];
  const log = createLogger({
    ...opts,
    nodeId: 7,
    write: (l) => lines.push(l),
    now: () => NOW,
  });
  return { log, lines };
}

Deno.test("createLogger json writes one object per event with the envelope and fields", () => {
  const { log, lines } = capture({ format: "json", level: "info" });
  log.info("coordinating", {
    topic: "__consumer_offsets",
    partition: 3,
    offset: 12n,
    msg: "clash",
    absent: undefined,
  });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith("}\n"));
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: "2026-12-06T12:00:00.000Z",
    level: "info",
    broker: 7,
    msg: "coordinating",
    topic: "__consumer_offsets",
    partition: 3,
    offset: "12",
    field_msg: "clash",
  });
});

Deno.test("createLogger text puts time, level and broker first and quotes field values with spaces", () => {
  const { log, lines } = capture({ format: "text", level: "info" });
  log.warn("peer down\nagain", { peer: 2, why: "connection refused" });
  assert.deepEqual(lines, [
    '2026-12-06T12:00:00.000Z WARN raftq[7]: peer down\\nagain peer=2 why="connection refused"\n',
  ]);
});

Deno.test("createLogger drops events below its level", () => {
  const { log, lines } = capture({ format: "text", level: "warn" });
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  assert.deepEqual(lines.map((l) => l.split(" ")[1]), ["WARN", "ERROR"]);
});
