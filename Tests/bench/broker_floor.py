"""What RabbitMQ alone costs per message on this machine, without Parley: one
connection publishes persistent messages with publisher confirms (one at a time, as a
gateway publishes a turn), another consumes them with a prefetch and acks each, and
the broker's CPU time (its beam.smp, from /proc) is divided by the messages.

    python3 Tests/bench/broker_floor.py [--messages 5000] [--queue-type quorum|classic]

Needs PARLEY_TEST_AMQP_URL and PARLEY_TEST_RABBITMQ_DIR (scripts/lib/throwaway.sh) and
pika. Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from pathlib import Path

import pika


def broker_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run(url: str, pid: int, messages: int, queue_type: str, body: bytes) -> dict:
    queue = f"floor-{queue_type}-{uuid.uuid4().hex[:8]}"
    publisher = pika.BlockingConnection(pika.URLParameters(url))
    channel = publisher.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})
    channel.confirm_delivery()
    received = threading.Event()
    count = 0

    def consume() -> None:
        nonlocal count
        connection = pika.BlockingConnection(pika.URLParameters(url))
        consumer = connection.channel()
        consumer.basic_qos(prefetch_count=100)

        def on_message(ch, method, _properties, _body) -> None:
            nonlocal count
            ch.basic_ack(method.delivery_tag)
            count += 1
            if count >= messages:
                ch.stop_consuming()

        consumer.basic_consume(queue, on_message)
        consumer.start_consuming()
        connection.close()
        received.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.5)
    cpu_before, started = broker_cpu_seconds(pid), time.monotonic()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    for _ in range(messages):
        channel.basic_publish("", queue, body, properties=properties, mandatory=True)
    received.wait(120)
    elapsed, cpu = time.monotonic() - started, broker_cpu_seconds(pid) - cpu_before
    channel.queue_delete(queue)
    publisher.close()
    return {"queue_type": queue_type, "messages": count, "seconds": elapsed, "broker_cpu_seconds": cpu,
            "broker_cpu_ms_per_message": cpu * 1000 / max(count, 1), "messages_per_second": count / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--queue-type", action="append", choices=["quorum", "classic"])
    args = parser.parse_args()
    url = os.environ["PARLEY_TEST_AMQP_URL"]
    pid = int((Path(os.environ["PARLEY_TEST_RABBITMQ_DIR"]) / "rabbitmq.pid").read_text().split()[0])
    body = b'{"v":1,"kind":"message","content":"' + b"x" * 300 + b'"}'
    for queue_type in args.queue_type or ["quorum", "classic"]:
        figures = run(url, pid, args.messages, queue_type, body)
        print(f"{queue_type:8s} {figures['messages']} messages in {figures['seconds']:.1f} s "
              f"({figures['messages_per_second']:.0f}/s): broker {figures['broker_cpu_ms_per_message']:.3f} ms CPU a message "
              f"(publish with confirm, deliver, ack)", flush=True)


if __name__ == "__main__":
    main()
