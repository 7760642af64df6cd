"""An independent Kafka client for Braid's Kafka tests: confluent-kafka (librdkafka's Python
client) and fastavro, never Braid's code.

    client.py create SERVERS TOPIC PARTITIONS
    client.py delete SERVERS TOPIC
    client.py send SERVERS TOPIC [AVRO_SCHEMA] < records.jsonl
    client.py consume SERVERS TOPIC [AVRO_SCHEMA] > records.jsonl
    client.py generate SERVERS TOPIC PARTITIONS COUNT

A record line is {"p": partition, "k": key, "v": value, "ts": millis, "h": [[name, value]]};
keys and values are text, {"b64": ...} for bytes, or (with an Avro schema) {"avro": datum}.
`send` produces one record per batch (tansu 0.6 numbers offsets wrongly inside multi-record
batches) and prints how many were acknowledged. `consume` reads every partition from its
start to its end and prints the records in partition and offset order.
"""

import base64
import io
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT = 30


def load_schema(path):
    import fastavro

    with open(path) as f:
        return fastavro.parse_schema(json.load(f))


def to_bytes(value, schema):
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if "b64" in value:
        return base64.b64decode(value["b64"])
    import fastavro

    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, value["avro"])
    return out.getvalue()


def create(servers, topic, partitions):
    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.create_topics([NewTopic(topic, int(partitions), 1)])
    futures[topic].result(TIMEOUT)
    print(f"created {topic}")


def delete(servers, topic):
    admin = AdminClient({"bootstrap.servers": servers})
    admin.delete_topics([topic])[topic].result(TIMEOUT)
    print(f"deleted {topic}")


def producer(servers):
    return Producer(
        {
            "bootstrap.servers": servers,
            "batch.num.messages": 1,
            "linger.ms": 0,
            "enable.idempotence": False,
            "acks": "all",
        }
    )


def send(servers, topic, schema_path=None):
    schema = load_schema(schema_path) if schema_path else None
    p = producer(servers)
    acked = []
    failed = []

    def done(err, msg):
        (failed if err else acked).append(err or msg.offset())

    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        kwargs = {
            "key": to_bytes(r.get("k"), schema),
            "value": to_bytes(r.get("v"), schema),
            "on_delivery": done,
        }
        if r.get("p") is not None:
            kwargs["partition"] = r["p"]
        if r.get("ts") is not None:
            kwargs["timestamp"] = r["ts"]
        if r.get("h"):
            kwargs["headers"] = [(n, v.encode() if v is not None else None) for n, v in r["h"]]
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(TIMEOUT)
    if failed or left:
        sys.exit(f"{len(failed)} records failed ({failed[:3]}), {left} unacknowledged")
    print(len(acked))


def generate(servers, topic, partitions, count):
    """COUNT small JSON records spread over the partitions, for the large-topic tests."""
    p = producer(servers)
    partitions, count = int(partitions), int(count)
    failed = []

    def done(err, _msg):
        if err:
            failed.append(err)

    for i in range(count):
        value = b'{"id": %d, "amount": %d}' % (i, i % 1000)
        while True:
            try:
                p.produce(topic, value=value, partition=i % partitions, on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(120)
    if failed or left:
        sys.exit(f"{len(failed)} records failed ({failed[:3]}), {left} unacknowledged")
    print(count)


def consume(servers, topic, schema_path=None):
    schema = load_schema(schema_path) if schema_path else None
    c = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": "braid-test-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = c.list_topics(topic, timeout=TIMEOUT)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {}
    assignment = []
    for part in partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=TIMEOUT)
        if high > low:
            ends[part] = high
            assignment.append(TopicPartition(topic, part, low))
    c.assign(assignment)
    records = []
    while ends:
        msg = c.poll(TIMEOUT)
        if msg is None:
            sys.exit(f"no record within {TIMEOUT}s; still to read: {ends}")
        if msg.error():
            if msg.error().code() == -191:  # partition EOF
                ends.pop(msg.partition(), None)
                continue
            raise KafkaException(msg.error())
        if msg.partition() not in ends:
            continue
        value = msg.value()
        if schema is not None and value is not None:
            import fastavro

            value = fastavro.schemaless_reader(io.BytesIO(value), schema)
        elif value is not None:
            value = value.decode()
        key = msg.key().decode() if msg.key() is not None else None
        records.append({"p": msg.partition(), "o": msg.offset(), "k": key, "v": value})
        if msg.offset() + 1 >= ends[msg.partition()]:
            ends.pop(msg.partition())
    c.close()
    for r in sorted(records, key=lambda r: (r["p"], r["o"])):
        print(json.dumps(r, sort_keys=True, default=str))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"create": create, "delete": delete, "send": send, "consume": consume, "generate": generate}[command](*args)
