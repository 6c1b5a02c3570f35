"""kafka-python 2.0.2 (Debian's python3-kafka, pure Python) against raftq:
admin create, produce acks=all, consume in a group with a manual commit, a
second consumer of the group resuming at the commit, admin delete.
Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC. Prints one JSON line."""
import json
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
out = {}

admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
out["listed"] = topic in admin.list_topics()

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(10):
    producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % 2).get(timeout=10)
producer.flush()
producer.close()


def consumer():
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="py-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=8000,
    )


first = consumer()
seen = []
for message in first:
    seen.append(message.value.decode())
    if len(seen) == 6:
        break
first.commit()
first.close()
out["first"] = sorted(seen)

second = consumer()
rest = []
for message in second:
    rest.append(message.value.decode())
    if len(seen) + len(rest) >= 10:
        break
second.close()
out["rest"] = sorted(rest)
out["version"] = ".".join(str(v) for v in admin.config["api_version"])

admin.delete_topics([topic])
out["deleted"] = topic not in admin.list_topics()
admin.close()
print(json.dumps(out))
