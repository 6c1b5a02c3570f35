/**
 * realClock against the runtime: time readings are monotonic, and each kind
 * of timer fires (or, once cleared, does not).
 */
import assert from "node:assert/strict";
import { realClock, sleep } from "./mod.ts";

Deno.test("realClock.nowMs never goes backwards", () => {
  let prev = realClock.nowMs();
  for (let i = 0; i < 1000; i++) {
    const now = realClock.nowMs();
    assert.ok(now >= prev);
    prev = now;
  }
});

Deno.test("realClock.setTimeout fires after its delay, and not once cleared", async () => {
  const startMs = realClock.nowMs();
  const cleared = realClock.setTimeout(() => assert.fail("cleared"), 1);
  realClock.clearTimeout(cleared);
  await new Promise<void>((resolve) => realClock.setTimeout(resolve, 5));
  assert.ok(realClock.nowMs() - startMs >= 4);
});

Deno.test("realClock.setInterval repeats until cleared", async () => {
  let fired = 0;
  await new Promise<void>((resolve) => {
    const h = realClock.setInterval(() => {
      if (++fired === 3) {
        realClock.clearInterval(h);
        resolve();
      }
    }, 1);
  });
  assert.equal(fired, 3);
});

Deno.test("realClock.setImmediate runs on a later turn, and not once cleared", async () => {
  const order: string[] = [];
  const cleared = realClock.setImmediate(() => order.push("cleared"));
  realClock.clearImmediate(cleared);
  const done = new Promise<void>((resolve) =>
    realClock.setImmediate(() => {
      order.push("immediate");
      resolve();
    })
  );
  order.push("sync");
  await done;
  assert.deepEqual(order, ["sync", "immediate"]);
});

Deno.test("sleep resolves once its delay has passed on the clock", async () => {
  const startMs = realClock.nowMs();
  await sleep(realClock, 5);
  assert.ok(realClock.nowMs() - startMs >= 4);
});
