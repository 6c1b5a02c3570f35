// kafkajs clients for the transaction tests.
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;

/** kafkajs asks a transactional producer for idempotence and one request in flight. */
export function transactionalProducer(
  kafka: ReturnType<typeof patientKafka>,
  transactionalId: string,
  opts: { transactionTimeout?: number } = {},
) {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    ...opts,
  });
}

/** A client that rides out a broker restart in the middle of a test. */
export function patientKafka(clientId: string, port: number) {
  return new Kafka({
    clientId,
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 },
  });
}
