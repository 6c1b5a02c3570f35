// The single executable: `deno task compile` builds dist/raftq, which must
// serve Kafka with no Deno or Node beside it. deno compile downloads its
// runtime (denort) on first use; where that download is impossible (as on
// machines without internet access) the test is skipped and says so.
import assert from "node:assert/strict";
import { removeDir, run } from "./harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const out = await Deno.makeTempDir({ prefix: "raftq-compile-" });
const binary = `${out}/raftq`;
const compiled = await run(Deno.execPath(), [
  "compile",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--output",
  binary,
  `${ROOT}main.ts`,
], { timeoutMs: 300_000 });
const unreachable = compiled.code !== 0 &&
  /dns error|lookup address|failed to download|error sending request|Connection refused/i
    .test(compiled.stderr);
if (unreachable) await removeDir(out);

Deno.test({
  name: unreachable
    ? "compiled raftq binary serves Kafka (skipped: deno compile cannot download its runtime, denort, on this machine)"
    : "compiled raftq binary serves Kafka",
  ignore: unreachable,
  async fn() {
    try {
      assert.equal(compiled.code, 0, compiled.stderr);
      const help = await run(binary, ["--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(new TextDecoder().decode(help.stdout), /serve/);
      const dataDir = `${out}/data`;
      const child = new Deno.Command(binary, {
        args: [
          "serve",
          "--port",
          "0",
          "--data-dir",
          dataDir,
          "--set",
          "admin.port=0",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      while (!/serving Kafka on \S+:\d+/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      child.kill("SIGTERM");
      await child.status;
      reader.releaseLock();
      await child.stderr.cancel();
      assert.match(text, /serving Kafka on/);
    } finally {
      await removeDir(out);
    }
  },
});
