// layerViolations on synthetic graphs: allowed edges yield nothing, and every
// forbidden edge is reported, compared as a whole list so a miss fails.
import assert from "node:assert/strict";
import {
  graphFromDenoInfo,
  layerViolations,
  moduleOf,
} from "./check_layers.ts";

function edges(graph: Record<string, string[]>): string[] {
  return layerViolations(new Map(Object.entries(graph))).map((v) =>
    `${v.importer} -> ${v.imported}`
  );
}

Deno.test("layerViolations passes the edges the table allows", () => {
  assert.deepEqual(
    edges({
      "main.ts": ["src/cli/mod.ts", "src/cli/program.ts"],
      "src/cli/program.ts": ["src/broker/mod.ts", "src/cli/io.ts"],
      "src/broker/broker.ts": ["src/raft/mod.ts", "src/util/mod.ts"],
      "src/raft/core/raft.ts": ["src/raft/core/log.ts", "src/util/mod.ts"],
      "src/raft/wal/wal.ts": ["src/raft/core/mod.ts", "src/config/mod.ts"],
      "src/storage/segment.ts": ["src/protocol/mod.ts"],
    }),
    ["main.ts -> src/cli/program.ts"],
  );
});

Deno.test("layerViolations reports every forbidden edge", () => {
  const graph = {
    "src/broker/broker.ts": [
      "src/storage/mod.ts", // allowed
      "src/cli/mod.ts", // upwards
      "src/storage/segment.ts", // deep file of another module
      "src/raft/testing/mod.ts", // test helper
      "src/broker/testing.ts", // test helper of its own module
    ],
    "src/raft/wal/wal.ts": ["src/protocol/mod.ts"],
    "src/raft/core/raft.ts": ["src/raft/host/mod.ts", "src/util/assert.ts"],
    "src/storage/segment.ts": ["src/broker/mod.ts"],
    "src/client/client.ts": ["src/broker/mod.ts"],
    "src/protocol/api.ts": ["src/config/mod.ts"],
    "src/discovery/static.ts": ["src/config/mod.ts"],
    "src/config/load.ts": ["src/util/mod.ts", "src/discovery/mod.ts"],
    "src/util/assert.ts": ["src/protocol/mod.ts"],
    "src/admin/http.ts": ["src/broker/mod.ts", "src/raft/mod.ts"],
    "src/extra/x.ts": ["src/util/mod.ts"],
    "src/loose.ts": [],
    "src/cli/serve.ts": ["src/loose.ts", "scripts/bench.ts"],
  };
  assert.deepEqual(edges(graph), [
    "src/admin/http.ts -> src/raft/mod.ts",
    "src/broker/broker.ts -> src/broker/testing.ts",
    "src/broker/broker.ts -> src/cli/mod.ts",
    "src/broker/broker.ts -> src/raft/testing/mod.ts",
    "src/broker/broker.ts -> src/raft/testing/mod.ts",
    "src/broker/broker.ts -> src/storage/segment.ts",
    "src/cli/serve.ts -> scripts/bench.ts",
    "src/cli/serve.ts -> src/loose.ts",
    "src/client/client.ts -> src/broker/mod.ts",
    "src/config/load.ts -> src/discovery/mod.ts",
    "src/discovery/static.ts -> src/config/mod.ts",
    "src/extra/x.ts -> src/util/mod.ts",
    "src/protocol/api.ts -> src/config/mod.ts",
    "src/raft/core/raft.ts -> src/raft/host/mod.ts",
    "src/raft/core/raft.ts -> src/util/assert.ts",
    "src/raft/wal/wal.ts -> src/protocol/mod.ts",
    "src/storage/segment.ts -> src/broker/mod.ts",
    "src/util/assert.ts -> src/protocol/mod.ts",
  ]);
});

Deno.test("layerViolations names the rule each edge breaks", () => {
  const rules = layerViolations(
    new Map([
      ["src/raft/wal/wal.ts", ["src/protocol/crc32c.ts"]],
      ["src/storage/log.ts", ["src/protocol/record_batch.ts"]],
      ["src/cli/serve.ts", ["src/broker/testing/mod.ts"]],
    ]),
  ).map((v) => `${v.importer} -> ${v.imported}: ${v.rule}`);
  assert.deepEqual(rules, [
    "src/cli/serve.ts -> src/broker/testing/mod.ts: only src/broker/mod.ts may be imported from outside broker",
    "src/cli/serve.ts -> src/broker/testing/mod.ts: test code imported by production code",
    "src/raft/wal/wal.ts -> src/protocol/crc32c.ts: raft may import only config, util",
    "src/storage/log.ts -> src/protocol/record_batch.ts: only src/protocol/mod.ts may be imported from outside protocol",
  ]);
});

Deno.test("moduleOf maps main.ts and src/<module>/ files, nothing else", () => {
  assert.equal(moduleOf("main.ts"), "main");
  assert.equal(moduleOf("src/raft/core/raft.ts"), "raft");
  assert.equal(moduleOf("src/loose.ts"), undefined);
  assert.equal(moduleOf("scripts/bench.ts"), undefined);
});

Deno.test("graphFromDenoInfo keeps local code and type edges only", () => {
  const root = "file:///repo/";
  const graph = graphFromDenoInfo({
    modules: [
      {
        specifier: `${root}main.ts`,
        dependencies: [
          { code: { specifier: `${root}src/cli/mod.ts` } },
          { type: { specifier: `${root}src/config/mod.ts` } },
          { code: { specifier: "npm:/commander@15.1.0" } },
        ],
      },
      { specifier: `${root}src/cli/mod.ts` },
      { specifier: "node:zlib", dependencies: [] },
    ],
  }, root);
  assert.deepEqual([...graph], [
    ["main.ts", ["src/cli/mod.ts", "src/config/mod.ts"]],
    ["src/cli/mod.ts", []],
  ]);
});
