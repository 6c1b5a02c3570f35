/** How client commands reach the cluster. */
import { KafkaClient } from "../client/mod.ts";

export interface ClientCommandOptions {
  bootstrap: string;
}

/** Runs `body` with a connected client and always closes it. */
export async function withClient<T>(
  opts: ClientCommandOptions,
  body: (client: KafkaClient) => Promise<T>,
): Promise<T> {
  const client = await KafkaClient.connect(opts.bootstrap, {
    clientId: "raftq-cli",
  });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
