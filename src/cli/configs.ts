/**
 * Config commands shared by topics and brokers: altering them with
 * IncrementalAlterConfigs, and printing them with their sources.
 */
import type { ConfigResource } from "../client/mod.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";
import { type CliIo, CommandError } from "./io.ts";

/** Kafka's ConfigSource numbers, named as kafka-configs.sh names them. */
const SOURCE_NAMES: Record<number, string> = {
  1: "DYNAMIC_TOPIC_CONFIG",
  2: "DYNAMIC_BROKER_CONFIG",
  3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
  4: "STATIC_BROKER_CONFIG",
  5: "DEFAULT_CONFIG",
};

/** One `name=value<TAB>SOURCE` line per config. */
export function configLines(
  configs: readonly { name: string; value: string | null; source: number }[],
): string[] {
  return configs.map((c) =>
    `${c.name}=${c.value ?? ""}\t${
      SOURCE_NAMES[c.source] ?? `source ${c.source}`
    }`
  );
}

export interface AlterConfigOptions extends ClientCommandOptions {
  set: Record<string, string>;
  delete: string[];
}

export function alterConfig(
  _io: CliIo,
  resource: ConfigResource,
  opts: AlterConfigOptions,
): Promise<void> {
  if (Object.keys(opts.set).length === 0 && opts.delete.length === 0) {
    throw new CommandError(
      "nothing to alter: give --set key=value or --delete key",
    );
  }
  return withClient(
    opts,
    (client) =>
      client.alterConfigs(resource, { set: opts.set, remove: opts.delete }),
  );
}

/**
 * Without --set or --delete, prints a broker's configs with their
 * sources; with them, alters the dynamic configs of `--broker` or, without
 * it, every broker's default.
 */
export function brokerConfig(
  io: CliIo,
  opts: AlterConfigOptions & { broker?: number },
): Promise<void> {
  const name = opts.broker === undefined ? "" : String(opts.broker);
  const resource: ConfigResource = { type: "broker", name };
  if (Object.keys(opts.set).length > 0 || opts.delete.length > 0) {
    return alterConfig(io, resource, opts);
  }
  return withClient(opts, async (client) => {
    const lines = configLines(await client.describeConfigs(resource));
    io.stdout(lines.map((l) => `${l}\n`).join(""));
  });
}
