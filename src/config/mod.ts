/**
 * raftq's configuration: one YAML file, RAFTQ_* environment variables and
 * command-line settings merged over defaults (in that order of precedence),
 * validated in one pass and returned as one deeply frozen `Config`.
 *
 * Seams: YAML parsing is confined to yaml.ts; the field table in schema.ts
 * drives everything else. This module imports nothing from raftq but
 * src/util, and it is the only one that reads config files or the
 * environment: the others get their slice of `Config` as plain options.
 */
export {
  ConfigError,
  type ConfigProblem,
  defaultConfig,
  describeConfig,
  envName,
  type FieldDescription,
  loadConfig,
  type LoadOptions,
} from "./load.ts";
export type { ClientAuth, Config, DiscoveryType, Listener } from "./schema.ts";
export {
  type Peer,
  SASL_MECHANISMS,
  type SaslMechanism,
  type SecurityProtocol,
} from "./kinds.ts";
export { parseDurationMs, parseSizeBytes } from "./units.ts";
