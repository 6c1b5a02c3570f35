import { type AdminServer, startAdminServer } from "../admin/mod.ts";
import { startBroker } from "../broker/mod.ts";
import { type Config, loadConfig } from "../config/mod.ts";
import { aborted, BOOTSTRAP_ENV, type CliIo, CommandError } from "./io.ts";

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

/** The PEM files admin.tls serves, or an error naming the field that fails. */
function readAdminTls(config: Config): { cert: string; key: string } {
  const read = (key: string, path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new CommandError(
        `admin.tls: cannot read ${key} "${path}": ${(err as Error).message}`,
      );
    }
  };
  return {
    cert: read("tls.cert_file", config.tls.certFile),
    key: read("tls.key_file", config.tls.keyFile),
  };
}

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
  // Read before the broker starts, so a missing file stops nothing.
  const adminTls = config.admin.port !== 0 && config.admin.tls
    ? readAdminTls(config)
    : undefined;
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
  let admin: AdminServer | null = null;
  try {
    admin = config.admin.port === 0 ? null : startAdminServer({
      hostname: config.admin.bindAddr,
      port: config.admin.port,
      status: broker.status,
      log: (m) => broker.logger.error(m),
      auth: config.admin.auth,
      ...(adminTls === undefined ? {} : { tls: adminTls }),
    });
  } catch (err) {
    // A taken port or a certificate Deno.serve refuses: the broker must
    // not outlive the failed start.
    await broker.stop();
    if (adminTls !== undefined && err instanceof Deno.errors.InvalidData) {
      throw new CommandError(
        `admin.tls: cannot serve tls.cert_file "${config.tls.certFile}" with tls.key_file "${config.tls.keyFile}": ${err.message}`,
      );
    }
    throw err;
  }
  if (admin !== null) {
    io.stdout(
      `raftq: broker ${config.nodeId} serving admin ${
        config.admin.tls ? "HTTPS" : "HTTP"
      } on ${config.admin.bindAddr}:${admin.port}\n`,
    );
  }
  // Certificates are renewed under a running broker (certbot,
  // cert-manager), which then signals it, as it would nginx.
  const reloadAdmin = async (server: AdminServer) => {
    try {
      await server.reloadTls(readAdminTls(config));
    } catch (err) {
      broker.logger.error(
        `kept the admin certificate: ${(err as Error).message}`,
      );
      return;
    }
    broker.logger.info(
      `reloaded the admin certificate from tls.cert_file "${config.tls.certFile}"`,
    );
  };
  const reload = () => {
    void broker.reloadTls();
    if (admin !== null && adminTls !== undefined) void reloadAdmin(admin);
  };
  Deno.addSignalListener("SIGHUP", reload);
  try {
    await Promise.race([broker.closed, aborted(io.interrupt)]);
  } finally {
    Deno.removeSignalListener("SIGHUP", reload);
    await admin?.stop();
    await broker.stop();
  }
}
