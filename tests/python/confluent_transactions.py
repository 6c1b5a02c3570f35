"""Transactions through confluent-kafka (librdkafka): one transaction that
produces and sends a group's offsets, then commits; one that produces and
aborts; one more commit. Then a read_committed and a read_uncommitted
consumer read the topic from its start. Prints one JSON object.

usage: confluent_transactions.py BOOTSTRAP TOPIC
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1:3]
out = {}

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 2, 1), NewTopic("rdk-txn-in", 1, 1)])[
    topic
].result(10)

producer = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": "rdk-txn-1",
    "transaction.timeout.ms": 10000,
})
producer.init_transactions(20)

# A consumer in the group whose offsets the first transaction carries, so
# that send_offsets_to_transaction has group metadata to send.
source = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "rdk-copier",
    "enable.auto.commit": False,
})


def transaction(values, end):
    producer.begin_transaction()
    for i, v in enumerate(values):
        producer.produce(topic, v.encode(), partition=i % 2)
    if end == "commit-offsets":
        producer.send_offsets_to_transaction(
            [TopicPartition("rdk-txn-in", 0, 3)],
            source.consumer_group_metadata(),
            20,
        )
    if end == "abort":
        producer.flush(10)
        producer.abort_transaction(20)
    else:
        producer.commit_transaction(20)


transaction(["a", "b", "c"], "commit-offsets")
transaction(["x", "y"], "abort")
transaction(["d"], "commit")

committed = source.committed([TopicPartition("rdk-txn-in", 0)], 10)
out["group_offset"] = committed[0].offset
source.close()


def read(isolation, count):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "rdk-reader-" + isolation,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < count:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    # Strays that should not come.
    end = time.time() + 1
    while time.time() < end:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    consumer.close()
    return sorted(got)


out["read_committed"] = read("read_committed", 4)
out["read_uncommitted"] = read("read_uncommitted", 6)
print(json.dumps(out))
