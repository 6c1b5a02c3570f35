/**
 * Writes the configuration reference table into README.md (between the
 * config-reference markers) from the config module's own field table, so the
 * README cannot drift from what the broker accepts. `--check` only verifies.
 */
import { describeConfig } from "../src/config/mod.ts";

const START = "<!-- config-reference:start -->";
const END = "<!-- config-reference:end -->";

function cell(value: unknown): string {
  const text = value === undefined
    ? "(derived)"
    : typeof value === "string"
    ? value
    : JSON.stringify(value);
  return text.replaceAll("|", "\\|");
}

export function referenceTable(): string {
  const rows = describeConfig().map((f) =>
    `| \`${f.key}\` | \`${f.env}\` | ${cell(f.accepts)} | \`${
      cell(f.default)
    }\` | ${cell(f.doc)} |`
  );
  return [
    "| key | environment | accepts | default | meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/**
 * Table rows with runs of spaces and dashes collapsed, so that deno fmt's
 * column padding does not count as a difference.
 */
export function normalizeTables(text: string): string {
  return text.split("\n").map((line) =>
    line.startsWith("|")
      ? line.replace(/\s+/g, " ").replace(/-{3,}/g, "---").replace(
        /-+:/g,
        "---:",
      )
      : line
  ).join("\n");
}

export function withReference(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`README.md lacks the ${START} ... ${END} markers`);
  }
  return readme.slice(0, start + START.length) + "\n\n" + referenceTable() +
    "\n\n" + readme.slice(end);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  const readme = Deno.readTextFileSync(path);
  const updated = withReference(readme);
  if (Deno.args.includes("--check")) {
    if (normalizeTables(updated) !== normalizeTables(readme)) {
      console.error(
        "README.md's configuration reference is out of date: run deno task docs",
      );
      Deno.exit(1);
    }
  } else {
    Deno.writeTextFileSync(path, updated);
    // Leave the table as deno fmt lays it out, so fmt --check stays clean.
    await new Deno.Command(Deno.execPath(), {
      args: ["fmt", path.pathname],
      stderr: "null",
    }).output();
  }
}
