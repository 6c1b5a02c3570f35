/**
 * Checks STYLE.md's import table ("Module boundaries and dependency
 * direction") against the module graph of main.ts, as `deno info --json`
 * reports it. Prints each violation as `importer -> imported: rule` and exits
 * 1 if there is any.
 *
 * Only main.ts's graph is walked: test files and test helpers are not in it,
 * so what this checks is exactly what `deno compile` ships.
 */

/** Edges from one repository-relative path to the paths it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

export interface Violation {
  importer: string;
  imported: string;
  rule: string;
}

/**
 * What each module may import besides itself and `util`. `main` (main.ts) is
 * the composition root and may import every module.
 *
 * `util` is the shared leaf that every module may import, `raft/core`
 * included: the table's "all may import it" wins over "raft/core imports
 * nothing from src/", since util holds only pure helpers (assert, branded
 * ids) and the interfaces of seams the core is handed (Rng), none of which
 * does I/O.
 */
export const ALLOWED_IMPORTS: ReadonlyMap<string, ReadonlySet<string>> =
  new Map([
    ["cli", new Set(["broker", "admin", "client", "config", "protocol"])],
    ["admin", new Set(["broker", "config"])],
    ["broker", new Set(["raft", "storage", "protocol", "discovery", "config"])],
    ["raft", new Set(["config"])],
    ["storage", new Set(["protocol"])],
    ["client", new Set(["protocol"])],
    ["discovery", new Set<string>()],
    ["protocol", new Set<string>()],
    ["config", new Set<string>()],
    ["util", new Set<string>()],
  ]);

const SHARED_LEAF = "util";
const RAFT_CORE = "src/raft/core/";

/**
 * The module a path belongs to: `main` for main.ts, `<name>` for a file under
 * `src/<name>/`, undefined for anything else (a file directly in src/, or
 * outside it).
 */
export function moduleOf(path: string): string | undefined {
  if (path === "main.ts") return "main";
  const parts = path.split("/");
  if (parts.length < 3 || parts[0] !== "src") return undefined;
  return parts[1];
}

/** Test files and test helpers, which production code must never import. */
export function isTestingFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return (path.startsWith("src/") && path.includes("/testing/")) ||
    name === "testing.ts" || name.endsWith("_testing.ts") ||
    name.endsWith("_test.ts");
}

function layerRule(importer: string, imported: string): string | undefined {
  const source = moduleOf(importer);
  const target = moduleOf(imported);
  if (source === undefined) {
    return "file outside main.ts and src/<module>/";
  }
  if (target === undefined) {
    return "imports a file outside src/<module>/";
  }
  if (source === "main") return undefined;
  const allowed = ALLOWED_IMPORTS.get(source);
  if (allowed === undefined) return `module ${source} is not in the table`;
  if (target === SHARED_LEAF) return undefined;
  if (importer.startsWith(RAFT_CORE) && !imported.startsWith(RAFT_CORE)) {
    return "raft/core imports nothing from src/ but util";
  }
  if (source === target) return undefined;
  if (!allowed.has(target)) {
    const list = [...allowed, SHARED_LEAF].join(", ");
    return `${source} may import only ${list}`;
  }
  return undefined;
}

/** The violations of the import table among `graph`'s edges, sorted. */
export function layerViolations(graph: ImportGraph): Violation[] {
  const found: Violation[] = [];
  for (const [importer, imports] of graph) {
    for (const imported of new Set(imports)) {
      const add = (rule: string) => found.push({ importer, imported, rule });
      const layer = layerRule(importer, imported);
      if (layer !== undefined) add(layer);
      const target = moduleOf(imported);
      if (
        layer === undefined && target !== undefined && target !== "main" &&
        target !== moduleOf(importer) && imported !== `src/${target}/mod.ts`
      ) {
        add(`only src/${target}/mod.ts may be imported from outside ${target}`);
      }
      if (isTestingFile(imported) && !isTestingFile(importer)) {
        add("test code imported by production code");
      }
    }
  }
  return found.sort((a, b) =>
    `${a.importer} ${a.imported}`.localeCompare(`${b.importer} ${b.imported}`)
  );
}

interface DenoInfoDependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}

interface DenoInfo {
  modules: { specifier: string; dependencies?: DenoInfoDependency[] }[];
}

/**
 * The graph among the local files of `deno info --json` output, with paths
 * relative to `rootUrl` (a file: URL ending in "/"). npm:, node: and remote
 * modules are left out: the table is about raftq's own modules.
 */
export function graphFromDenoInfo(
  info: DenoInfo,
  rootUrl: string,
): ImportGraph {
  const local = (specifier: string | undefined) =>
    specifier?.startsWith(rootUrl)
      ? specifier.slice(rootUrl.length)
      : undefined;
  const graph = new Map<string, string[]>();
  for (const module of info.modules) {
    const importer = local(module.specifier);
    if (importer === undefined) continue;
    const imports = (module.dependencies ?? []).flatMap((d) =>
      [local(d.code?.specifier), local(d.type?.specifier)].filter(
        (s): s is string => s !== undefined,
      )
    );
    graph.set(importer, imports);
  }
  return graph;
}

async function denoInfo(root: URL): Promise<DenoInfo> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) {
    throw new Error(
      `Cannot read the module graph: deno info exited ${output.code}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const graph = graphFromDenoInfo(await denoInfo(root), root.href);
  const violations = layerViolations(graph);
  for (const v of violations) {
    console.error(`${v.importer} -> ${v.imported}: ${v.rule}`);
  }
  if (violations.length > 0) {
    console.error(`check_layers: ${violations.length} violation(s)`);
    Deno.exit(1);
  }
  console.log(`check_layers: ${graph.size} modules follow the import table`);
}
