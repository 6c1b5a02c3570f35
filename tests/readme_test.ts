// The README's configuration reference is generated from the config module;
// this keeps it from drifting when a field is added or a default changes.
import assert from "node:assert/strict";
import { ADMIN_PATHS } from "../src/admin/http.ts";
import { actingTopicConfigs } from "../src/broker/configs.ts";
import { normalizeTables, withReference } from "../scripts/config_reference.ts";

Deno.test("README configuration reference matches the config module", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  assert.equal(
    normalizeTables(withReference(readme)),
    normalizeTables(readme),
    "run `deno task docs` to regenerate it",
  );
});

Deno.test("README shows the dev and test commands", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  assert.match(readme, /deno task dev/);
  assert.match(readme, /deno task test/);
});

Deno.test("README names exactly the topic configs raftq acts on", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  const sentence = readme.slice(
    readme.indexOf("raftq acts on"),
    readme.indexOf("Altered configs act"),
  );
  const named = [...sentence.matchAll(/`([a-z]+(?:\.[a-z]+)+)`/g)]
    .map((m) => m[1]);
  assert.deepEqual(named.sort(), actingTopicConfigs().sort());
});

Deno.test("README's Operations section lists every admin HTTP path", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  const section = readme.slice(
    readme.indexOf("## Operations"),
    readme.indexOf("## Compatibility notes"),
  );
  const listed = [...section.matchAll(/^\| `(\/[^`]*)`/gm)].map((m) => m[1]);
  assert.deepEqual(listed, [...ADMIN_PATHS]);
});
