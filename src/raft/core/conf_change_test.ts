/** ConfChange entry encoding: round trip and rejection of bad input. */
import assert from "node:assert/strict";
import { ConfChangeError, decodeConfChange, encodeConfChange } from "./mod.ts";

Deno.test("encodeConfChange round-trips every change type", () => {
  for (const type of ["addVoter", "removeVoter", "addLearner"] as const) {
    const cc = { type, nodeId: 4_000_000_000 };
    assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  }
});

Deno.test("encodeConfChange rejects a node id that is not a positive integer", () => {
  for (const nodeId of [0, -1, 1.5, 2 ** 33]) {
    assert.throws(
      () => encodeConfChange({ type: "addVoter", nodeId }),
      ConfChangeError,
    );
  }
});

Deno.test("decodeConfChange rejects wrong length, version and type code", () => {
  assert.throws(() => decodeConfChange(new Uint8Array(5)), /length is 5/);
  assert.throws(
    () => decodeConfChange(new Uint8Array([2, 0, 0, 0, 0, 1])),
    /unknown version 2/,
  );
  assert.throws(
    () => decodeConfChange(new Uint8Array([1, 9, 0, 0, 0, 1])),
    /unknown type code 9/,
  );
});
