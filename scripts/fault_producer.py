"""A steady librdkafka producer for scripts/bench_faults.ts.

Sends one acks=all message (idempotent if asked) to every partition of a topic each
interval and prints each delivery report as a JSON line on stdout:
{"p": partition, "o": offset, "v": value, "t": wall-clock ms, "e": error}.
Runs until its stdin closes, then flushes what is in flight.

    fault_producer.py BOOTSTRAP TOPIC PARTITIONS INTERVAL_MS IDEMPOTENT
"""
import json
import sys
import threading
import time

from confluent_kafka import Producer

bootstrap, topic, partitions, interval_ms, idempotent = sys.argv[1:6]
partitions = int(partitions)
interval = int(interval_ms) / 1000

producer = Producer({
    "bootstrap.servers": bootstrap,
    "acks": "all",
    "enable.idempotence": idempotent == "true",
    "linger.ms": 0,
    # A fault outlasts librdkafka's defaults: never give a message up, so
    # every value is either acknowledged or still retried at the end.
    "message.timeout.ms": 600000,
    "retry.backoff.ms": 20,
    "topic.metadata.refresh.interval.ms": 1000,
})

stop = threading.Event()


def watch_stdin():
    sys.stdin.read()
    stop.set()


def report(err, msg):
    line = {
        "p": msg.partition(),
        "o": msg.offset(),
        "v": msg.value().decode(),
        "t": time.time() * 1000,
        "e": None if err is None else str(err),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


threading.Thread(target=watch_stdin, daemon=True).start()
seq = 0
next_send = time.monotonic()
while not stop.is_set():
    for p in range(partitions):
        producer.produce(topic, value=f"{p}-{seq}", partition=p,
                         on_delivery=report)
    seq += 1
    next_send += interval
    while True:
        left = next_send - time.monotonic()
        producer.poll(max(0, min(left, 0.005)))
        if left <= 0:
            break
producer.flush(60)
