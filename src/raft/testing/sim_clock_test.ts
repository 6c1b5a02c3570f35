/**
 * SimClock: events run one at a time in due order, time moves only in
 * step(), intervals repeat until cleared, and a returned promise is waited
 * for before the next event runs.
 */
import assert from "node:assert/strict";
import { SeededRng } from "./rng.ts";
import { SimClock } from "./sim_clock.ts";

Deno.test("SimClock.step runs events in due order and advances time to each", async () => {
  const clock = new SimClock({ rng: new SeededRng(1) });
  const seen: string[] = [];
  clock.setTimeout(() => seen.push(`b@${clock.nowMs()}`), 20);
  clock.setTimeout(() => seen.push(`a@${clock.nowMs()}`), 10);
  const cleared = clock.setTimeout(() => seen.push("cleared"), 5);
  clock.clearTimeout(cleared);
  clock.setImmediate(() => seen.push(`now@${clock.nowMs()}`));
  while (await clock.step());
  assert.deepEqual(seen, ["now@0", "a@10", "b@20"]);
  assert.equal(clock.nowMs(), 20);
});

Deno.test("SimClock.setInterval repeats until cleared, and step stops at untilMs", async () => {
  const clock = new SimClock({ rng: new SeededRng(1) });
  const firedMs: number[] = [];
  const h = clock.setInterval(() => {
    firedMs.push(clock.nowMs());
    if (firedMs.length === 3) clock.clearInterval(h);
  }, 10);
  assert.equal(await clock.step(15), true);
  assert.equal(await clock.step(15), false);
  assert.equal(clock.nowMs(), 15);
  while (await clock.step());
  assert.deepEqual(firedMs, [10, 20, 30]);
  assert.equal(clock.pending, 0);
});

Deno.test("SimClock.step waits for a returned promise before the next event", async () => {
  const clock = new SimClock({ rng: new SeededRng(1) });
  const seen: string[] = [];
  clock.setImmediate(async () => {
    await new Promise((r) => setTimeout(r, 5));
    seen.push("slow");
  });
  clock.setImmediate(() => seen.push("next"));
  while (await clock.step());
  assert.deepEqual(seen, ["slow", "next"]);
});

Deno.test("SimClock jitter depends on the seed only", async () => {
  const run = async (seed: number) => {
    const clock = new SimClock({ rng: new SeededRng(seed), jitterMsMax: 5 });
    const firedMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock.setTimeout(() => firedMs.push(clock.nowMs()), 10);
    }
    while (await clock.step());
    return firedMs;
  };
  assert.deepEqual(await run(3), await run(3));
  assert.notDeepEqual(await run(3), await run(4));
});
