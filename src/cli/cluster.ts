import type { CliIo } from "./io.ts";
import { formatTable } from "./table.ts";
import { type ClientCommandOptions, withClient } from "./topic.ts";

/**
 * The brokers (the controller marked) and, per topic partition, its
 * leader, replicas and in-sync replicas, from one Metadata answer.
 */
export function clusterStatus(
  io: CliIo,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const metadata = await client.metadata(null);
    const brokers = [...metadata.brokers].sort((a, b) => a.nodeId - b.nodeId);
    const topics = [...metadata.topics].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    const partitions = topics.flatMap((t) =>
      [...t.partitions].sort((a, b) => a.partition - b.partition).map((p) => [
        t.name,
        p.partition,
        p.leader < 0 ? "none" : p.leader,
        p.replicas.join(",") || "-",
        p.isr.join(",") || "-",
      ])
    );
    io.stdout(
      `Cluster: ${metadata.clusterId ?? "-"}\n\n` +
        formatTable(
          ["BROKER", "ADDRESS", "CONTROLLER"],
          brokers.map((b) => [
            b.nodeId,
            `${b.host}:${b.port}`,
            b.nodeId === metadata.controllerId ? "*" : "",
          ]),
        ) + "\n" +
        formatTable(
          ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"],
          partitions,
        ),
    );
  });
}
