// The example configs shipped in configs/ load without a single problem.
import assert from "node:assert/strict";
import { loadConfig } from "./mod.ts";

const dir = new URL("../../configs/", import.meta.url);

function yamlFiles(url: URL): URL[] {
  const out: URL[] = [];
  for (const entry of Deno.readDirSync(url)) {
    const child = new URL(entry.name + (entry.isDirectory ? "/" : ""), url);
    if (entry.isDirectory) out.push(...yamlFiles(child));
    else if (entry.name.endsWith(".yaml")) out.push(child);
  }
  return out;
}

Deno.test("every example config in configs/ loads", () => {
  const files = yamlFiles(dir);
  assert.ok(files.length >= 7, `found ${files.length} configs`);
  for (const file of files) {
    const config = loadConfig({ file: file.pathname, env: {} });
    assert.ok(config.nodeId >= 1, file.pathname);
  }
});
