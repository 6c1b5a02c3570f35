"""A librdkafka group consumer stays subscribed while its topic is deleted
and re-created with fewer partitions, and must go on to read the new
topic from its start. Prints what it read as one JSON object.

usage: recreate_consumer.py BOOTSTRAP TOPIC
"""
import json
import os
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1:3]
admin = AdminClient({"bootstrap.servers": bootstrap})


def create(partitions):
    for _ in range(50):
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
            return
        except Exception as e:  # the deletion may not have settled yet
            last = e
            time.sleep(0.2)
    raise last


def produce(values):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, v in enumerate(values):
        p.produce(topic, v.encode(), partition=i)
    assert p.flush(10) == 0


def read(consumer, want, seconds):
    got = []
    deadline = time.time() + seconds
    while time.time() < deadline and not all(w in got for w in want):
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    return got


create(3)
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "recreate",
    "auto.offset.reset": "earliest",
    "auto.commit.interval.ms": 200,
    "topic.metadata.refresh.interval.ms": 500,
})
consumer.subscribe([topic])
produce(["old-0", "old-1", "old-2"])
old = read(consumer, ["old-0", "old-1", "old-2"], 30)

admin.delete_topics([topic])[topic].result(10)
time.sleep(1.5)
create(2)
produce(["new-0", "new-1"])
new = read(consumer, ["new-0", "new-1"], 30)
print(json.dumps({"old": sorted(old), "new": sorted(new)}), flush=True)
# librdkafka 2.0.2 keeps a reference to the broker handle of a deleted
# topic's partitions, so closing the consumer waits for ever: exit instead.
os._exit(0)
