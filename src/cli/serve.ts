import { startAdminServer } from "../admin/mod.ts";
import { startBroker } from "../broker/mod.ts";
import { loadConfig } from "../config/mod.ts";
import { aborted, BOOTSTRAP_ENV, type CliIo } from "./io.ts";

export interface ServeOptions {
  config?: string;
  nodeId?: string;
  port?: string;
  dataDir?: string;
  raftPort?: string;
  peers?: string;
  set: string[];
}

/** Config keys set by serve's named flags. */
const FLAG_KEYS = {
  nodeId: "node_id",
  port: "bind_port",
  dataDir: "data_dir",
  raftPort: "raft_port",
  peers: "discovery.peers",
} as const;

/** Runs a broker until it stops by itself or the user interrupts. */
export async function serve(io: CliIo, opts: ServeOptions): Promise<void> {
  // Named flags come after --set so that the more specific spelling wins.
  const overrides = [...opts.set];
  // Listing peers means static discovery, even over a config file that
  // says memory (the default broker.yaml does): this is how a broker that
  // ran on its own is restarted as the first member of a cluster.
  if (
    opts.peers !== undefined &&
    !opts.set.some((s) => s.startsWith("discovery.type="))
  ) {
    overrides.push("discovery.type=static");
  }
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = opts[flag as keyof typeof FLAG_KEYS];
    if (value !== undefined) overrides.push(`${key}=${value}`);
  }
  // The client commands' variable is no broker setting, and the config
  // loader rejects RAFTQ_* names it does not know.
  const { [BOOTSTRAP_ENV]: _bootstrap, ...env } = io.env;
  const config = loadConfig({
    ...(opts.config === undefined ? {} : { file: opts.config }),
    env,
    overrides,
  });
  const broker = await startBroker(config);
  const [first, ...others] = config.listeners;
  io.stdout(
    `raftq: broker ${config.nodeId} serving Kafka on ${
      first!.advertisedHost
    }:${broker.port}\n`,
  );
  for (const l of others) {
    io.stdout(
      `raftq: listener ${l.name} (${l.protocol}) on ${l.advertisedHost}:${
        broker.listenerPorts.get(l.name)
      }\n`,
    );
  }
  const admin = config.admin.port === 0 ? null : startAdminServer({
    hostname: config.admin.bindAddr,
    port: config.admin.port,
    status: broker.status,
    log: (m) => broker.logger.error(m),
  });
  if (admin !== null) {
    io.stdout(
      `raftq: broker ${config.nodeId} serving admin HTTP on ${config.admin.bindAddr}:${admin.port}\n`,
    );
  }
  try {
    await Promise.race([broker.closed, aborted(io.interrupt)]);
  } finally {
    await admin?.stop();
    await broker.stop();
  }
}
