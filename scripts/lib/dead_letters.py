#!/usr/bin/env python3
"""Lists, requeues and discards dead-lettered turns (`<prefix>.dead`). See
scripts/dead-letters.sh, which runs it; the fault suite (Tests/faults) imports it.

    list      every message of the dead-letter queue: message id, type, why and from
              which queue it was dead-lettered, when, and the start of its body; the
              messages stay in the queue
    requeue   publish messages back to the turns exchange (`<prefix>.turns`, routing
              key `turn`) with a publisher confirm, then remove them from the dead-letter
              queue. Without --id: every message whose body is a turn envelope (JSON
              with turn_id and session_id); undecodable ones stay unless --include-invalid.
    discard   remove the messages named with --id (e.g. a poison message once inspected)

The broker is AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f), the prefix
AMQP_PREFIX (default parley), as for the apps. Needs the Python package pika.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
TURN_ROUTING_KEY = "turn"
# Headers the broker adds when it dead-letters a message; not carried back.
DEATH_HEADERS = ("x-death", "x-first-death-reason", "x-first-death-queue", "x-first-death-exchange",
                 "x-last-death-reason", "x-last-death-queue", "x-last-death-exchange", "x-delivery-count")


@dataclass
class DeadLetter:
    position: int
    message_id: str | None
    type: str | None
    reason: str | None
    queue: str | None
    died_at: str | None
    deaths: int
    requeued_before: int
    body: bytes
    turn: dict[str, Any] | None = field(default=None)
    delivery_tag: int = 0
    properties: Any = None

    @property
    def is_turn(self) -> bool:
        return self.turn is not None

    def preview(self, width: int = 80) -> str:
        text = self.body.decode("utf-8", "replace")
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # control characters escaped
        return text if len(text) <= width else text[: width - 1] + "…"

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position, "message_id": self.message_id, "type": self.type, "reason": self.reason,
            "queue": self.queue, "died_at": self.died_at, "deaths": self.deaths, "requeued_before": self.requeued_before,
            "is_turn": self.is_turn, "turn_id": (self.turn or {}).get("turn_id"),
            "session_id": (self.turn or {}).get("session_id"), "body_preview": self.preview(200),
        }


def _decode_turn(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict) and isinstance(value.get("turn_id"), str) and isinstance(value.get("session_id"), str):
        return value
    return None


def _death_facts(headers: dict[str, Any]) -> tuple[str | None, str | None, str | None, int]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    reason = text(headers.get("x-first-death-reason"))
    queue = text(headers.get("x-first-death-queue"))
    died_at = None
    deaths = 0
    for death in headers.get("x-death") or []:
        deaths += int(death.get("count", 1) or 1)
        if died_at is None and isinstance(death.get("time"), dt.datetime):
            died_at = death["time"].replace(tzinfo=dt.timezone.utc).isoformat()
        reason = reason or text(death.get("reason"))
        queue = queue or text(death.get("queue"))
    return reason, queue, died_at, deaths


class DeadLetterQueue:
    """One connection to the broker and a channel on `<prefix>.dead`. Messages read
    with `fetch_all` stay unacknowledged until `ack`ed; `close` returns the others to
    the queue (in their order)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.dead_queue = f"{prefix}.dead"
        self.turns_exchange = f"{prefix}.turns"
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        # Passive: fails if the queue does not exist (wrong prefix), creates nothing.
        try:
            self.channel.queue_declare(self.dead_queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            self.connection.close()
            raise SystemExit(f"dead_letters: no queue {self.dead_queue!r} on the broker ({error}); is the prefix right?") from None
        self.publisher = self.connection.channel()
        self.publisher.confirm_delivery()

    def count(self) -> int:
        return self.channel.queue_declare(self.dead_queue, passive=True).method.message_count

    def fetch_all(self, limit: int | None = None) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        while limit is None or len(letters) < limit:
            method, properties, body = self.channel.basic_get(self.dead_queue, auto_ack=False)
            if method is None:
                break
            headers = dict(properties.headers or {})
            reason, queue, died_at, deaths = _death_facts(headers)
            letters.append(DeadLetter(
                position=len(letters) + 1, message_id=properties.message_id, type=properties.type, reason=reason,
                queue=queue, died_at=died_at, deaths=deaths, requeued_before=int(headers.get("x-parley-requeued", 0) or 0),
                body=body, turn=_decode_turn(body), delivery_tag=method.delivery_tag, properties=properties,
            ))
        return letters

    def requeue(self, letter: DeadLetter) -> None:
        """Publishes the message to the turns exchange (confirmed, mandatory), then
        removes it from the dead-letter queue."""
        old = letter.properties
        headers = {k: v for k, v in (old.headers or {}).items() if k not in DEATH_HEADERS}
        headers["x-parley-requeued"] = letter.requeued_before + 1
        properties = pika.BasicProperties(
            content_type=old.content_type, content_encoding=old.content_encoding, headers=headers, delivery_mode=2,
            message_id=old.message_id, type=old.type, timestamp=old.timestamp, app_id=old.app_id,
        )
        self.publisher.basic_publish(
            self.turns_exchange, TURN_ROUTING_KEY, letter.body, properties=properties, mandatory=True,
        )
        self.channel.basic_ack(letter.delivery_tag)

    def discard(self, letter: DeadLetter) -> None:
        self.channel.basic_ack(letter.delivery_tag)

    def close(self) -> None:
        try:
            self.connection.close()
        except pika.exceptions.AMQPError:
            pass


def publish(url: str, exchange: str, routing_key: str, body: bytes, *, message_id: str, type_: str, headers: dict | None = None) -> None:
    """One persistent message, confirmed (the fault suite's poison turn)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange, routing_key, body, mandatory=True,
            properties=pika.BasicProperties(delivery_mode=2, message_id=message_id, type=type_, headers=headers,
                                            content_type="application/json"),
        )
    finally:
        connection.close()


def list_letters(url: str, prefix: str, limit: int | None = None) -> list[dict[str, Any]]:
    queue = DeadLetterQueue(url, prefix)
    try:
        return [letter.as_dict() for letter in queue.fetch_all(limit)]
    finally:
        queue.close()


def requeue_letters(url: str, prefix: str, ids: list[str] | None = None, include_invalid: bool = False) -> dict[str, list[str]]:
    """Returns {"requeued": [...], "kept": [...]} message ids (or `#position` without one)."""
    queue = DeadLetterQueue(url, prefix)
    done: dict[str, list[str]] = {"requeued": [], "kept": []}
    try:
        for letter in queue.fetch_all():
            name = letter.message_id or f"#{letter.position}"
            chosen = (letter.message_id in ids) if ids else (letter.is_turn or include_invalid)
            if chosen:
                queue.requeue(letter)
                done["requeued"].append(name)
            else:
                done["kept"].append(name)
    finally:
        queue.close()
    return done


def discard_letters(url: str, prefix: str, ids: list[str]) -> dict[str, list[str]]:
    queue = DeadLetterQueue(url, prefix)
    done: dict[str, list[str]] = {"discarded": [], "kept": []}
    try:
        for letter in queue.fetch_all():
            name = letter.message_id or f"#{letter.position}"
            if letter.message_id in ids:
                queue.discard(letter)
                done["discarded"].append(name)
            else:
                done["kept"].append(name)
    finally:
        queue.close()
    return done


def _print_table(letters: list[dict[str, Any]], prefix: str) -> None:
    print(f"{len(letters)} message(s) in {prefix}.dead")
    if not letters:
        return
    columns = ("position", "message_id", "type", "reason", "queue", "died_at", "is_turn", "body_preview")
    rows = [[str(letter[c]) if letter[c] is not None else "-" for c in columns] for letter in letters]
    for row in rows:
        row[-1] = row[-1][:80]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dead-letters", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("list", "requeue", "discard"))
    parser.add_argument("--prefix", default=os.environ.get("AMQP_PREFIX") or "parley", help="AMQP_PREFIX of the deployment (default: $AMQP_PREFIX or parley)")
    parser.add_argument("--url", default=os.environ.get("AMQP_URL") or DEFAULT_URL, help="the broker (default: $AMQP_URL or %(default)s)")
    parser.add_argument("--id", action="append", dest="ids", default=[], help="a message id (repeatable): act on these only")
    parser.add_argument("--include-invalid", action="store_true", help="requeue: also messages that are not turn envelopes")
    parser.add_argument("--limit", type=int, default=None, help="list: at most this many")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    if args.command == "list":
        letters = list_letters(args.url, args.prefix, args.limit)
        if args.json:
            print(json.dumps(letters, ensure_ascii=False, indent=2))
        else:
            _print_table(letters, args.prefix)
        return 0
    if args.command == "requeue":
        result = requeue_letters(args.url, args.prefix, args.ids or None, args.include_invalid)
    else:
        if not args.ids:
            parser.error("discard needs --id (one per message to remove)")
        result = discard_letters(args.url, args.prefix, args.ids)
    if args.json:
        print(json.dumps(result))
    else:
        for key, names in result.items():
            print(f"{key}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
    missing = [i for i in args.ids if i not in result.get("requeued", []) + result.get("discarded", [])]
    if missing:
        print(f"not found in {args.prefix}.dead: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _redacted(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pika.exceptions.AMQPConnectionError as error:
        url = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--url=")), None)
        if url is None and "--url" in sys.argv[:-1]:
            url = sys.argv[sys.argv.index("--url") + 1]
        url = url or os.environ.get("AMQP_URL") or DEFAULT_URL
        print(f"dead-letters: cannot connect to the broker at {_redacted(url)}: {error!r}", file=sys.stderr)
        sys.exit(2)
