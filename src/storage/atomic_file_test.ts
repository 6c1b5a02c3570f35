// writeFileAtomic replaces a file whole and leaves no temporary behind.
import assert from "node:assert/strict";
import { writeFileAtomic } from "./atomic_file.ts";

Deno.test("writeFileAtomic replaces the content and leaves no .tmp file", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/state.json`;
    writeFileAtomic(path, "first");
    writeFileAtomic(path, "second, longer than the first");
    assert.equal(Deno.readTextFileSync(path), "second, longer than the first");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "state.json",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
