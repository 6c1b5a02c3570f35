"""kafka-python 2.0.2 speaking the oldest versions raftq serves: with
api_version (0, 8, 1) / (0, 8, 2) it reads log ends with ListOffsets v0 and
commits and fetches offsets with OffsetCommit/OffsetFetch v0 / v1.
Usage: kafka_python_legacy.py BOOTSTRAP TOPIC. Prints one JSON line."""
import json
import sys

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

bootstrap, topic = sys.argv[1], sys.argv[2]
tp = TopicPartition(topic, 0)
out = {}
for version, offset in (((0, 8, 1), 2), ((0, 8, 2), 3)):
    name = ".".join(str(v) for v in version)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="legacy-" + name,
        api_version=version,
        enable_auto_commit=False,
    )
    consumer.assign([tp])
    out[name] = {
        "end": consumer.end_offsets([tp])[tp],
        "begin": consumer.beginning_offsets([tp])[tp],
    }
    consumer.commit({tp: OffsetAndMetadata(offset, "legacy")})
    out[name]["committed"] = consumer.committed(tp)
    consumer.close()
print(json.dumps(out))
