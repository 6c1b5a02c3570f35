import assert from "node:assert/strict";
import { refusesConnections } from "./liveness.ts";

Deno.test("refusesConnections is false while a listener runs and true once it is gone", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = { host: "127.0.0.1", port: listener.addr.port };
  assert.equal(await refusesConnections(address, { timeoutMs: 1_000 }), false);
  listener.close();
  assert.equal(await refusesConnections(address, { timeoutMs: 1_000 }), true);
});
