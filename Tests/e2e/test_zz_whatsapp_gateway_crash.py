"""The WhatsApp channel's outbox across a crash of every gateway: a reply the Graph API
did not take before the crash is sent once by a gateway started after it. Last in the
suite (it restarts the gateways, whose counters the observability tests read)."""

from __future__ import annotations

import parley_e2e as e2e
from parley_e2e import reply_text


def test_a_reply_the_graph_api_did_not_take_is_sent_once_after_every_gateway_crashed(stack):
    number = e2e.whatsapp_number()
    stack.graph.refuse_sends = True
    try:
        e2e.whatsapp_deliver(stack, [e2e.whatsapp_text(number, "responda depois")])
        e2e.wait_until(lambda: [r[1] for r in e2e.whatsapp_rows(number)] == ["answered"], 30, "the reply to wait for the Graph API")
        calls = stack.graph.send_calls
        e2e.wait_until(lambda: stack.graph.send_calls > calls, 10, "the relay to retry the send")
        crashed = [g for g in stack.gateways if g.alive()]
        for gateway in crashed:
            gateway.kill()
    finally:
        stack.graph.refuse_sends = False
    for gateway in stack.gateways[:2]:
        gateway.start()
    for gateway in stack.gateways[:2]:
        gateway.wait_healthy()
    # After the dead relay's claim ran out (WHATSAPP_CLAIM_SECONDS), a new one sends it.
    assert e2e.whatsapp_replies(stack, number, 1, timeout=30) == [reply_text(1, "responda depois")]
    e2e.whatsapp_deliver(stack, [e2e.whatsapp_text(number, "e agora?")])
    assert e2e.whatsapp_replies(stack, number, 2) == [reply_text(1, "responda depois"), reply_text(2, "e agora?")]
