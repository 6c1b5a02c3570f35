"""Describes and alters a topic's configs with confluent-kafka (librdkafka)
or kafka-python, printing what each step saw as one JSON object.

usage: admin_configs.py confluent|kafka-python BOOTSTRAP TOPIC
"""
import json
import sys

client, bootstrap, topic = sys.argv[1:4]
out = {}

if client == "confluent":
    from confluent_kafka.admin import AdminClient, ConfigResource
    from confluent_kafka import KafkaException

    admin = AdminClient({"bootstrap.servers": bootstrap})

    def describe():
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = admin.describe_configs([res])[res].result(10)
        return {k: (e.value, str(e.source)) for k, e in entries.items()}

    def alter(configs):
        res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config=configs)
        try:
            admin.alter_configs([res])[res].result(10)
            return "ok"
        except KafkaException as e:
            return e.args[0].name()

    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    b = admin.describe_configs([broker])[broker].result(10)
    out["broker_log_segment_bytes"] = b["log.segment.bytes"].value
else:
    from kafka.admin import KafkaAdminClient, ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def describe():
        resp = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )[0]
        (err, _msg, _type, _name, entries) = resp.resources[0]
        assert err == 0, err
        # v0 entries: name, value, read_only, is_default, is_sensitive
        return {e[0]: (e[1], "default" if e[3] else "set") for e in entries}

    def alter(configs):
        resp = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)]
        )
        (err, _msg, _type, _name) = resp.resources[0]
        return "ok" if err == 0 else err

before = describe()
out["count"] = len(before)
out["retention_before"] = before["retention.ms"]
out["alter"] = alter({"retention.ms": "86400000", "cleanup.policy": "compact"})
after = describe()
out["retention_after"] = after["retention.ms"]
out["cleanup_after"] = after["cleanup.policy"][0]
out["bad"] = alter({"retention.ms": "a week"})
out["unchanged"] = describe()["retention.ms"][0]
print(json.dumps(out))
