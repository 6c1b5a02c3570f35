/** kcat (librdkafka) as the benchmarks drive it. */

/** `count` lines of `messageBytes` bytes: kcat's input, one message a line. */
export function kcatInput(messageBytes: number, count: number): Uint8Array {
  const line = new Uint8Array(messageBytes + 1).fill(0x62);
  line[messageBytes] = 0x0a;
  const out = new Uint8Array(line.length * count);
  for (let i = 0; i < count; i++) out.set(line, i * line.length);
  return out;
}

/** kcat producing stdin lines, batching as librdkafka users tune it. */
export function kcatProduceArgs(
  bootstrap: string,
  topic: string,
  acks: -1 | 1,
): string[] {
  return [
    "-b",
    bootstrap,
    "-P",
    "-t",
    topic,
    "-X",
    `acks=${acks === -1 ? "all" : "1"}`,
    "-X",
    "linger.ms=5",
    "-X",
    "batch.size=1000000",
    "-X",
    "queue.buffering.max.kbytes=1048576",
  ];
}
