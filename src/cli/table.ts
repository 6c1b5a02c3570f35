/**
 * Renders rows as columns aligned with spaces under an upper-case header,
 * as Kafka's own tools print groups and offsets.
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly (string | number | bigint)[])[],
): string {
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, i) =>
    Math.max(...cells.map((row) => row[i]?.length ?? 0))
  );
  return cells.map((row) =>
    row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd() +
    "\n"
  ).join("");
}
