/**
 * Loading: defaults < file < environment < command line, each layer read into
 * one map of dotted keys, then every field parsed once and every problem
 * collected, so a user fixes a config in one round rather than one error at
 * a time.
 */
import { assert } from "../util/mod.ts";
import { type ListenerSpec, SASL_MECHANISMS } from "./kinds.ts";
import { type Config, type Field, FIELDS, type Listener } from "./schema.ts";
import { nearest } from "./suggest.ts";
import { readYaml } from "./yaml.ts";

export interface ConfigProblem {
  /** Dotted snake_case key ("raft.election_rtt"), or the file name. */
  path: string;
  value: unknown;
  /** What was wrong and what is allowed; names the value and its source. */
  message: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    assert(problems.length > 0, "ConfigError needs at least one problem");
    const count = problems.length === 1
      ? "1 problem"
      : `${problems.length} problems`;
    super(
      `Invalid configuration (${count}):\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join("\n"),
    );
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** YAML file; a missing file is an error. No file: defaults only. */
  file?: string;
  /** Variables named RAFTQ_<KEY>, `__` between nesting levels. */
  env?: Record<string, string>;
  /** "key=value" settings, from --set and the named flags. */
  overrides?: readonly string[];
}

const ENV_PREFIX = "RAFTQ_";

const FIELD_BY_KEY = new Map(FIELDS.map((f) => [f.key, f]));
/** Every mapping that groups fields ("raft", "log"). */
const SECTIONS = new Set(
  FIELDS.flatMap((f) =>
    f.key.split(".").slice(0, -1).map((_, i, parts) =>
      parts.slice(0, i + 1).join(".")
    )
  ),
);

/** The environment variable that sets a key: raft.election_rtt → RAFTQ_RAFT__ELECTION_RTT. */
export function envName(key: string): string {
  return ENV_PREFIX + key.toUpperCase().replaceAll(".", "__");
}

interface RawValue {
  value: unknown;
  /** Appended to error messages: " (from RAFTQ_BIND_PORT)". */
  source: string;
}

class Collector {
  readonly problems: ConfigProblem[] = [];
  readonly raw = new Map<string, RawValue>();

  problem(path: string, value: unknown, message: string): void {
    this.problems.push({ path, value, message });
  }

  unknownKey(key: string, source: string, spell = (k: string) => k): void {
    const parent = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    const suggestion = nearest(key, [...FIELD_BY_KEY.keys(), ...SECTIONS]);
    const hint = suggestion !== undefined
      ? `did you mean ${spell(suggestion)}?`
      : `known keys here: ${siblingsOf(parent).map(spell).join(", ")}`;
    this.problem(key, undefined, `unknown key${source}; ${hint}`);
  }

  set(key: string, value: unknown, source: string): void {
    // A YAML `key:` with nothing after it means "leave the default".
    if (value === null) this.raw.delete(key);
    else this.raw.set(key, { value, source });
  }
}

function siblingsOf(parent: string): string[] {
  const prefix = parent === "" ? "" : parent + ".";
  const names = new Set<string>();
  for (const key of [...FIELD_BY_KEY.keys()]) {
    if (!key.startsWith(prefix)) continue;
    names.add(prefix + key.slice(prefix.length).split(".")[0]);
  }
  return [...names];
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readFileLayer(c: Collector, file: string): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    c.problem(file, file, `cannot read the config file: ${reason}`);
    return;
  }
  const parsed = readYaml(text);
  if (!parsed.ok) {
    c.problem(file, undefined, `is not valid YAML: ${parsed.error}`);
    return;
  }
  const source = ` (in ${file})`;
  if (parsed.value === null) return;
  walkMapping(c, { node: parsed.value, prefix: "", source });
}

function walkMapping(
  c: Collector,
  at: { node: unknown; prefix: string; source: string },
): void {
  if (!isMapping(at.node)) {
    c.problem(
      at.prefix || "(top level)",
      at.node,
      `${
        JSON.stringify(at.node)
      } is not valid${at.source}: expected a mapping of keys (${
        siblingsOf(at.prefix).join(", ")
      })`,
    );
    return;
  }
  for (const [name, value] of Object.entries(at.node)) {
    const key = at.prefix === "" ? name : `${at.prefix}.${name}`;
    if (FIELD_BY_KEY.has(key)) c.set(key, value, at.source);
    else if (SECTIONS.has(key)) {
      if (value !== null) {
        walkMapping(c, { node: value, prefix: key, source: at.source });
      }
    } else c.unknownKey(key, at.source);
  }
}

function readEnvLayer(c: Collector, env: Record<string, string>): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const key = name.slice(ENV_PREFIX.length).toLowerCase().replaceAll(
      "__",
      ".",
    );
    const source = ` (from ${name})`;
    if (FIELD_BY_KEY.has(key)) c.set(key, value, source);
    else c.unknownKey(key, source, envName);
  }
}

function readOverrideLayer(c: Collector, overrides: readonly string[]): void {
  const source = " (from the command line)";
  for (const setting of overrides) {
    const eq = setting.indexOf("=");
    if (eq <= 0) {
      c.problem(
        setting,
        setting,
        `is not a setting${source}: expected key=value, e.g. raft.election_rtt=20`,
      );
      continue;
    }
    const key = setting.slice(0, eq).trim();
    if (FIELD_BY_KEY.has(key)) c.set(key, setting.slice(eq + 1), source);
    else c.unknownKey(key, source);
  }
}

function setPath(
  target: Record<string, unknown>,
  prop: string,
  value: unknown,
) {
  const parts = prop.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    node = (node[part] ??= {}) as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function parseField(c: Collector, field: Field): unknown {
  const raw = c.raw.get(field.key);
  if (raw === undefined) {
    if (field.default === undefined) return undefined;
    const parsed = field.kind.parse(field.default);
    assert(parsed.ok, "config default does not parse", { key: field.key });
    return parsed.value;
  }
  const parsed = field.kind.parse(raw.value);
  if (parsed.ok) return parsed.value;
  c.problem(
    field.key,
    raw.value,
    `${
      JSON.stringify(raw.value)
    } is not valid${raw.source}: expected ${parsed.expected}`,
  );
  return undefined;
}

/** Rules that tie fields together; run only on fields that parsed. */
function checkRelations(c: Collector, config: Config): void {
  const { raft, discovery } = config;
  if (
    raft.electionRtt !== undefined && raft.heartbeatRtt !== undefined &&
    raft.electionRtt <= raft.heartbeatRtt * 2
  ) {
    c.problem(
      "raft.election_rtt",
      raft.electionRtt,
      `${raft.electionRtt} is too small: must be greater than 2 × raft.heartbeat_rtt (${
        raft.heartbeatRtt * 2
      }), or followers start elections between heartbeats`,
    );
  }
  if (discovery.type === "etcd" && discovery.endpoints?.length === 0) {
    c.problem(
      "discovery.endpoints",
      [],
      'is empty: discovery.type "etcd" needs at least one etcd endpoint',
    );
  }
  if (discovery.type === "static" && discovery.peers?.length === 0) {
    c.problem(
      "discovery.peers",
      [],
      'is empty: discovery.type "static" needs the voters as "id@host:raft_port"',
    );
  }
  if (discovery.type === "memory" && (discovery.peers?.length ?? 0) > 0) {
    c.problem(
      "discovery.peers",
      discovery.peers,
      'is set but discovery.type is "memory", which ignores it: set discovery.type to "static"',
    );
  }
  checkRaftTls(c, config);
  checkListeners(c, config);
  const seen = new Set<number>();
  for (const peer of discovery.peers ?? []) {
    if (seen.has(peer.nodeId)) {
      c.problem(
        "discovery.peers",
        peer.nodeId,
        `lists node id ${peer.nodeId} twice: each voter needs its own id`,
      );
    }
    seen.add(peer.nodeId);
  }
}

/** raft.tls takes its three files together: one alone would serve nothing. */
function checkRaftTls(c: Collector, config: Config): void {
  const raftTls = config.raft?.tls;
  if (raftTls !== undefined) {
    const files = {
      "raft.tls.cert_file": raftTls.certFile,
      "raft.tls.key_file": raftTls.keyFile,
      "raft.tls.ca_file": raftTls.caFile,
    };
    const given = Object.entries(files).filter(([, v]) => v !== "");
    const missing = Object.entries(files).filter(([, v]) => v === "");
    if (given.length > 0 && missing.length > 0) {
      c.problem(
        missing[0]![0],
        "",
        `is needed with ${
          given.map(([k]) => k).join(" and ")
        }: set all three raft.tls files or none`,
      );
    }
  }
}

function checkListeners(c: Collector, config: Config): void {
  const tls = config.tls;
  const names = new Set<string>();
  const ports = new Set<number>();
  for (const [i, listener] of (config.listeners ?? []).entries()) {
    if (names.has(listener.name)) {
      c.problem(
        `listeners[${i}].name`,
        listener.name,
        `"${listener.name}" names two listeners: each needs its own name`,
      );
    }
    names.add(listener.name);
    if (listener.port !== 0 && ports.has(listener.port)) {
      c.problem(
        `listeners[${i}].port`,
        listener.port,
        `${listener.port} is taken by an earlier listener: each needs its own port`,
      );
    }
    ports.add(listener.port);
    if (
      listener.protocol.endsWith("SSL") && tls !== undefined &&
      (tls.certFile === "" || tls.keyFile === "")
    ) {
      c.problem(
        `listeners[${i}].protocol`,
        listener.protocol,
        `${listener.protocol} needs tls.cert_file and tls.key_file`,
      );
    }
  }
  if (
    config.admin?.tls === true && tls !== undefined &&
    (tls.certFile === "" || tls.keyFile === "")
  ) {
    c.problem(
      "admin.tls",
      true,
      "needs tls.cert_file and tls.key_file: the admin listener serves the SSL listeners' certificate",
    );
  }
  const clientAuth = tls?.clientAuth;
  if (clientAuth !== undefined && clientAuth !== "none" && tls?.caFile === "") {
    c.problem(
      "tls.client_auth",
      clientAuth,
      `"${clientAuth}" needs tls.ca_file, the CA that client certificates must chain to`,
    );
  }
}

/** The listeners as given, or the one bind_addr:bind_port stands for. */
function resolveListeners(config: Config): Listener[] {
  // Until this runs, the field holds the listeners as parsed.
  const parsed = config.listeners as readonly ListenerSpec[];
  const given: readonly ListenerSpec[] = parsed.length > 0 ? parsed : [{
    name: "PLAINTEXT",
    host: config.bindAddr,
    port: config.bindPort,
    protocol: "PLAINTEXT",
    advertisedPort: config.advertisedPort ?? config.bindPort,
  }];
  return given.map((l) => ({
    name: l.name,
    host: l.host,
    port: l.port,
    protocol: l.protocol,
    advertisedHost: l.advertisedHost ?? config.advertisedHost,
    advertisedPort: l.advertisedPort ?? l.port,
    saslMechanisms: l.saslMechanisms ?? SASL_MECHANISMS,
  }));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Reads, merges and validates the configuration.
 * @throws ConfigError listing every problem found.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const c = new Collector();
  if (opts.file !== undefined) readFileLayer(c, opts.file);
  readEnvLayer(c, opts.env ?? {});
  readOverrideLayer(c, opts.overrides ?? []);

  const built: Record<string, unknown> = {};
  for (const field of FIELDS) {
    // Failed and derived fields are set to undefined too, so every section
    // exists for checkRelations and the derivations below.
    setPath(built, field.prop, parseField(c, field));
  }
  const config = built as unknown as Config;
  checkRelations(c, config);
  if (c.problems.length > 0) throw new ConfigError(c.problems);

  const given = c.raw.get("node_id")?.value;
  Object.assign(built, {
    // "broker-1" is kept as the user wrote it; a bare number, whether YAML
    // read it as a number or the environment gave it as text, gets one form.
    nodeName: typeof given === "string" && !/^\s*\d+\s*$/.test(given)
      ? given.trim()
      : `broker-${config.nodeId}`,
    advertisedPort: config.advertisedPort ?? config.bindPort,
    dataDir: config.dataDir ?? `./data/broker-${config.nodeId}`,
    listeners: resolveListeners(config),
  });
  return deepFreeze(config);
}

/** The configuration of a single node with nothing set. */
export function defaultConfig(): Config {
  return loadConfig();
}

export interface FieldDescription {
  key: string;
  env: string;
  /** What the field accepts, in words. */
  accepts: string;
  /** As a user would write it; undefined when derived from other fields. */
  default: unknown;
  doc: string;
}

/** One row per field, for the README's configuration reference. */
export function describeConfig(): FieldDescription[] {
  return FIELDS.map((f) => ({
    key: f.key,
    env: envName(f.key),
    accepts: f.kind.expected,
    default: f.default,
    doc: f.doc,
  }));
}
