/**
 * What transactions cost a producer: kafkajs sending the same 1 KiB
 * batches with an idempotent producer and with a transactional one that
 * commits every TXN_SENDS sends (the commit markers and the coordinator's
 * round trips are the difference), against one broker, for `seconds` each.
 */
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const MESSAGES_PER_SEND = 100;
const TXN_SENDS = 10;

export interface ProduceRun {
  msgs: number;
  bytes: number;
  elapsed: number;
}

export async function benchTransactions(
  bootstrap: string,
  opts: { seconds: number; topic: string },
): Promise<{ idempotent: ProduceRun; transactional: ProduceRun }> {
  const kafka = new Kafka({
    clientId: "bench-txn",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const value = "t".repeat(1024);
  const messages = Array.from({ length: MESSAGES_PER_SEND }, () => ({ value }));
  const run = async (transactional: boolean): Promise<ProduceRun> => {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      ...(transactional ? { transactionalId: "bench-txn-1" } : {}),
    });
    await producer.connect();
    let msgs = 0;
    const start = performance.now();
    const end = start + opts.seconds * 1000;
    try {
      while (performance.now() < end) {
        if (transactional) {
          const txn = await producer.transaction();
          for (let i = 0; i < TXN_SENDS; i++) {
            await txn.send({ topic: opts.topic, messages, acks: -1 });
          }
          await txn.commit();
          msgs += TXN_SENDS * MESSAGES_PER_SEND;
        } else {
          await producer.send({ topic: opts.topic, messages, acks: -1 });
          msgs += MESSAGES_PER_SEND;
        }
      }
    } finally {
      await producer.disconnect();
    }
    const elapsed = (performance.now() - start) / 1000;
    return { msgs, bytes: msgs * 1024, elapsed };
  };
  return { idempotent: await run(false), transactional: await run(true) };
}
