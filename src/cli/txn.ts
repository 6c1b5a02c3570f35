/**
 * `raftq txn`: the transactional ids of the cluster and the state their
 * coordinators hold, as kafka-transactions.sh lists and describes them.
 */
import { OPEN_TXN_STATES } from "../broker/mod.ts";
import { formatTable } from "./table.ts";
import type { CliIo } from "./io.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";

export function listTransactions(
  io: CliIo,
  opts: ClientCommandOptions & {
    state?: string[];
    producerId?: bigint[];
    durationMs?: number;
  },
): Promise<void> {
  return withClient(opts, async (client) => {
    const listed = await client.listTransactions({
      states: opts.state ?? [],
      producerIds: opts.producerId ?? [],
      durationMs: opts.durationMs ?? -1,
    });
    io.stdout(formatTable(
      ["TRANSACTIONAL-ID", "PRODUCER-ID", "STATE"],
      listed.map((t) => [t.transactionalId, t.producerId, t.state]),
    ));
  });
}

export function describeTransaction(
  io: CliIo,
  transactionalId: string,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const t = await client.describeTransaction(transactionalId);
    const open = OPEN_TXN_STATES.has(t.state);
    const partitions = t.partitions.flatMap((p) =>
      p.partitions.map((i) => `${p.topic}-${i}`)
    );
    io.stdout(formatTable(
      [
        "TRANSACTIONAL-ID",
        "PRODUCER-ID",
        "EPOCH",
        "STATE",
        "TIMEOUT-MS",
        "OPEN-FOR-MS",
        "PARTITIONS",
      ],
      [[
        transactionalId,
        t.producerId,
        t.producerEpoch,
        t.state,
        t.timeoutMs,
        open ? BigInt(Date.now()) - t.startTimeMs : "-",
        partitions.length === 0 ? "-" : partitions.join(","),
      ]],
    ));
  });
}
