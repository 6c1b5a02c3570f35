/**
 * Writes src/protocol/messages_gen.ts from Kafka's JSON message definitions
 * in ../shared/kafka-protocol/messages: a compact schema per message (for
 * codec.ts) and the TypeScript types of every request and response body.
 * Only structure is carried over, never the spec's prose.
 *
 * Usage: deno task gen:protocol
 */

const MESSAGES_DIR = new URL(
  "../../shared/kafka-protocol/messages/",
  import.meta.url,
);
const OUTPUT = new URL("../src/protocol/messages_gen.ts", import.meta.url);
const VERSION_MAX = 0x7fff;

/** The APIs raftq speaks, by spec name and api key. */
export const APIS: readonly (readonly [string, number])[] = [
  ["Produce", 0],
  ["Fetch", 1],
  ["ListOffsets", 2],
  ["Metadata", 3],
  ["OffsetCommit", 8],
  ["OffsetFetch", 9],
  ["FindCoordinator", 10],
  ["JoinGroup", 11],
  ["Heartbeat", 12],
  ["LeaveGroup", 13],
  ["SyncGroup", 14],
  ["DescribeGroups", 15],
  ["ListGroups", 16],
  ["SaslHandshake", 17],
  ["ApiVersions", 18],
  ["CreateTopics", 19],
  ["DeleteTopics", 20],
  ["DeleteRecords", 21],
  ["InitProducerId", 22],
  ["AddPartitionsToTxn", 24],
  ["AddOffsetsToTxn", 25],
  ["EndTxn", 26],
  ["WriteTxnMarkers", 27],
  ["TxnOffsetCommit", 28],
  ["DescribeAcls", 29],
  ["CreateAcls", 30],
  ["DeleteAcls", 31],
  ["DescribeConfigs", 32],
  ["AlterConfigs", 33],
  ["DescribeLogDirs", 35],
  ["SaslAuthenticate", 36],
  ["CreatePartitions", 37],
  ["DeleteGroups", 42],
  ["ElectLeaders", 43],
  ["IncrementalAlterConfigs", 44],
  ["AlterPartitionReassignments", 45],
  ["ListPartitionReassignments", 46],
  ["OffsetDelete", 47],
  ["DescribeUserScramCredentials", 50],
  ["AlterUserScramCredentials", 51],
  ["DescribeQuorum", 55],
  ["DescribeCluster", 60],
  ["DescribeProducers", 61],
  ["DescribeTransactions", 65],
  ["ListTransactions", 66],
];

interface SpecField {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  fields?: SpecField[];
}

interface SpecMessage {
  apiKey: number;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: SpecField[];
  commonStructs?: { name: string; fields: SpecField[] }[];
}

type Range = [number, number];

/** Removes `//` comments, leaving string literals untouched. */
export function stripComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else {
      out += c;
    }
  }
  return out;
}

function parseRange(spec: string | undefined, what: string): Range | null {
  if (spec === undefined || spec === "none") return null;
  const plus = /^(\d+)\+$/.exec(spec);
  if (plus) return [Number(plus[1]), VERSION_MAX];
  const span = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (span) return [Number(span[1]), Number(span[2] ?? span[1])];
  throw new SyntaxError(`Cannot parse version range "${spec}" of ${what}`);
}

function camel(name: string): string {
  return name[0]!.toLowerCase() + name.slice(1);
}

const PRIMITIVES: Record<string, string> = {
  int8: "number",
  int16: "number",
  int32: "number",
  uint16: "number",
  float64: "number",
  int64: "bigint",
  bool: "boolean",
  string: "string",
  bytes: "Uint8Array",
  records: "Uint8Array",
  uuid: "string",
};

function parseDefault(field: SpecField, primitive: string): string {
  const raw = String(field.default);
  if (raw === "null") return "null";
  switch (primitive) {
    case "int64":
      return `${BigInt(raw)}n`;
    case "bool":
      if (raw !== "true" && raw !== "false") break;
      return raw;
    case "string":
      return JSON.stringify(raw);
    case "int8":
    case "int16":
    case "int32":
    case "uint16":
    case "float64": {
      const n = Number(raw);
      if (Number.isNaN(n)) break;
      return String(n);
    }
  }
  throw new SyntaxError(
    `Cannot use default "${raw}" for ${field.name} of type ${field.type}`,
  );
}

/** Source text builder that keeps `deno fmt`'s layout. */
class Out {
  lines: string[] = [];
  line(indent: number, text: string) {
    this.lines.push("  ".repeat(indent) + text);
  }
}

function emitRange(key: string, range: Range | null, indent: number, o: Out) {
  if (range) o.line(indent, `${key}: [${range[0]}, ${range[1]}],`);
}

interface Ctx {
  message: SpecMessage;
  minVersion: number;
  /** Struct type name → interface base name (without "Input"). */
  names: Map<string, string>;
  interfaces: Out;
}

function structFields(field: SpecField, ctx: Ctx): SpecField[] {
  if (field.fields) return field.fields;
  const typeName = field.type.replace(/^\[\]/, "");
  const common = ctx.message.commonStructs?.find((s) => s.name === typeName);
  if (!common) {
    throw new SyntaxError(
      `${ctx.message.name}.${field.name}: no fields for struct ${typeName}`,
    );
  }
  return common.fields;
}

/** Interface names follow the field that holds the struct. */
function collectNames(
  fields: SpecField[],
  ctx: Ctx,
  seen: Map<string, string[]>,
) {
  for (const f of fields) {
    const elem = f.type.replace(/^\[\]/, "");
    if (PRIMITIVES[elem]) continue;
    const list = seen.get(f.name) ?? [];
    if (!list.includes(elem)) list.push(elem);
    seen.set(f.name, list);
    collectNames(structFields(f, ctx), ctx, seen);
  }
}

function assignNames(ctx: Ctx) {
  const seen = new Map<string, string[]>();
  collectNames(ctx.message.fields, ctx, seen);
  const used = new Set<string>();
  for (const [fieldName, types] of seen) {
    for (const t of types) {
      const prefix = ctx.message.name;
      const base = types.length === 1
        ? prefix + fieldName
        : t.startsWith(prefix)
        ? t
        : prefix + t;
      if (used.has(base)) {
        throw new SyntaxError(`Interface name ${base} is not unique`);
      }
      used.add(base);
      ctx.names.set(t, base);
    }
  }
}

function emitFields(
  fields: SpecField[],
  ctx: Ctx,
  indent: number,
  o: Out,
) {
  for (const f of fields) {
    const isArray = f.type.startsWith("[]");
    const elem = isArray ? f.type.slice(2) : f.type;
    const primitive = PRIMITIVES[elem] ? elem : null;
    const what = `${ctx.message.name}.${f.name}`;
    o.line(indent, "{");
    o.line(indent + 1, `name: "${camel(f.name)}",`);
    o.line(indent + 1, `type: "${primitive ?? "struct"}",`);
    if (isArray) o.line(indent + 1, "array: true,");
    emitRange("versions", parseRange(f.versions, what), indent + 1, o);
    emitRange(
      "nullableVersions",
      parseRange(f.nullableVersions, what),
      indent + 1,
      o,
    );
    emitRange(
      "taggedVersions",
      parseRange(f.taggedVersions, what),
      indent + 1,
      o,
    );
    if (f.tag !== undefined) o.line(indent + 1, `tag: ${f.tag},`);
    if (f.default !== undefined && primitive && !isArray) {
      o.line(indent + 1, `default: ${parseDefault(f, primitive)},`);
    }
    if (!primitive) {
      o.line(indent + 1, "fields: [");
      emitFields(structFields(f, ctx), ctx, indent + 2, o);
      o.line(indent + 1, "],");
    }
    o.line(indent, "},");
  }
}

function tsType(f: SpecField, ctx: Ctx, input: boolean): string {
  const isArray = f.type.startsWith("[]");
  const elem = isArray ? f.type.slice(2) : f.type;
  const base = PRIMITIVES[elem] ??
    ctx.names.get(elem)! + (input ? "Input" : "");
  const nullable = f.nullableVersions !== undefined &&
    f.nullableVersions !== "none";
  return (isArray ? `${base}[]` : base) + (nullable ? " | null" : "");
}

/**
 * A field may be left out of an encoder input when it has a default the
 * encoder can fill in: the spec names one, it is tagged, or some valid
 * version lacks it (so a caller writing that version has nothing to give).
 */
function optionalInInput(f: SpecField, ctx: Ctx): boolean {
  const range = parseRange(f.versions, f.name);
  return f.default !== undefined || f.tag !== undefined || range === null ||
    range[0] > ctx.minVersion;
}

function emitInterface(
  name: string,
  fields: SpecField[],
  ctx: Ctx,
  input: boolean,
) {
  const o = ctx.interfaces;
  o.line(0, `export interface ${name}${input ? "Input" : ""} {`);
  for (const f of fields) {
    const opt = input && optionalInInput(f, ctx) ? "?" : "";
    const head = `${camel(f.name)}${opt}:`;
    const type = `${tsType(f, ctx, input)};`;
    // deno fmt breaks a member that would pass 80 columns after its colon.
    if (2 + head.length + 1 + type.length > 80) {
      o.line(1, head);
      o.line(2, type);
    } else o.line(1, `${head} ${type}`);
  }
  o.line(0, "}");
  o.line(0, "");
}

function emitInterfaces(fields: SpecField[], ctx: Ctx, name: string) {
  emitInterface(name, fields, ctx, false);
  emitInterface(name, fields, ctx, true);
  for (const f of fields) {
    const elem = f.type.replace(/^\[\]/, "");
    if (PRIMITIVES[elem]) continue;
    emitInterfaces(structFields(f, ctx), ctx, ctx.names.get(elem)!);
  }
}

/** Reads one spec file, or null when it does not exist. */
export type ReadSpec = (fileName: string) => string;

/** Builds the text of messages_gen.ts from the spec files. */
export function generate(readSpec: ReadSpec): string {
  const schemas = new Out();
  const interfaces = new Out();
  const maps: Record<string, string[]> = {
    RequestBodies: [],
    ResponseBodies: [],
    RequestInput: [],
    ResponseInput: [],
  };
  schemas.line(0, "export const API_SCHEMAS: {");
  schemas.line(1, "readonly [K in ApiKeyNum]: ApiSchema;");
  schemas.line(0, "} = {");
  for (const [api, key] of APIS) {
    schemas.line(1, `${key}: {`);
    for (const kind of ["Request", "Response"] as const) {
      const message: SpecMessage = JSON.parse(
        stripComments(readSpec(`${api}${kind}.json`)),
      );
      if (message.apiKey !== key) {
        throw new SyntaxError(`${message.name} has api key ${message.apiKey}`);
      }
      const valid = parseRange(message.validVersions, message.name)!;
      const ctx: Ctx = {
        message,
        minVersion: valid[0],
        names: new Map(),
        interfaces,
      };
      assignNames(ctx);
      schemas.line(2, `${kind.toLowerCase()}: {`);
      schemas.line(3, `name: "${message.name}",`);
      emitRange("validVersions", valid, 3, schemas);
      emitRange(
        "flexibleVersions",
        parseRange(message.flexibleVersions, message.name),
        3,
        schemas,
      );
      schemas.line(3, "fields: [");
      emitFields(message.fields, ctx, 4, schemas);
      schemas.line(3, "],");
      schemas.line(2, "},");
      emitInterfaces(message.fields, ctx, message.name);
      maps[`${kind}Bodies`]!.push(`  ${key}: ${message.name};`);
      maps[`${kind}Input`]!.push(`  ${key}: ${message.name}Input;`);
    }
    schemas.line(1, "},");
  }
  schemas.line(0, "};");

  const head = [
    "// Generated by scripts/gen_protocol.ts from Kafka's message definitions; do not edit.",
    "",
    'import type { ApiSchema } from "./schema.ts";',
    "",
    "/** The api keys raftq speaks. */",
    "export const ApiKey = {",
    ...APIS.map(([name, key]) => `  ${name}: ${key},`),
    "} as const;",
    "export type ApiKeyNum = (typeof ApiKey)[keyof typeof ApiKey];",
    "",
  ];
  const mapLines = Object.entries(maps).flatMap(([name, lines]) => [
    `export interface ${name} {`,
    ...lines,
    "}",
    "",
  ]);
  return [
    ...head,
    ...schemas.lines,
    "",
    ...interfaces.lines,
    ...mapLines,
  ].join("\n").replace(/\n+$/, "\n");
}

if (import.meta.main) {
  const text = generate((file) =>
    Deno.readTextFileSync(new URL(file, MESSAGES_DIR))
  );
  Deno.writeTextFileSync(OUTPUT, text);
  console.log(`Wrote ${OUTPUT.pathname}`);
}
