"""confluent-kafka (librdkafka) AdminClient.create_partitions against raftq:
a valid raise, validate_only, and a count that does not grow.
Usage: admin_create_partitions.py BOOTSTRAP TOPIC. Prints one JSON line."""
import json
import sys

from confluent_kafka.admin import AdminClient, NewPartitions

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})


def outcome(count, **kwargs):
    future = admin.create_partitions([NewPartitions(topic, count)], **kwargs)[topic]
    try:
        future.result(timeout=15)
        return "ok"
    except Exception as e:  # KafkaException carrying the broker's KafkaError
        return e.args[0].name()


out = {
    "validate": outcome(6, validate_only=True),
    "partitions_after_validate": len(admin.list_topics(topic).topics[topic].partitions),
    "raise": outcome(4),
    "shrink": outcome(2),
}
out["partitions"] = len(admin.list_topics(topic).topics[topic].partitions)
print(json.dumps(out))
