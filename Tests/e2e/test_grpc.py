"""The gRPC API (`parley.v1.Chat`, proto/parley/v1/chat.proto) from a client that is not
ours: Python grpcio, with stubs generated from the proto at test time by grpcio-tools.
Statuses, deadlines, a stream cut by the client, cancel, the one-shot course question;
what a call says is checked against what PostgreSQL stored."""

from __future__ import annotations

import importlib
import sys
import threading
import time

import grpc
import pytest
from grpc_tools import protoc

import parley_e2e as e2e
from parley_e2e import REPO_ROOT, make_jwt, reply_text, stored_messages, wait_until


@pytest.fixture(scope="module")
def api(stack):
    """The generated messages and stubs (chat_pb2, chat_pb2_grpc)."""
    out = stack.tmp / "grpc_py"
    out.mkdir(exist_ok=True)
    status = protoc.main([
        "grpc_tools.protoc", f"-I{REPO_ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}",
        str(REPO_ROOT / "proto" / "parley" / "v1" / "chat.proto"),
    ])
    assert status == 0, "protoc could not compile proto/parley/v1/chat.proto"
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("parley.v1.chat_pb2"), importlib.import_module("parley.v1.chat_pb2_grpc")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def chat(stack, api):
    _, stubs = api
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.gateways[1].extra['grpc_port']}")
    yield stubs.ChatStub(channel)
    channel.close()


def auth(user: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {make_jwt(user)}")]


def parley_code(error: grpc.RpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("parley-error-code")


def test_a_grpc_client_starts_a_session_streams_the_answer_and_reads_the_history(stack, api, chat):
    pb, _ = api
    user = e2e.unique("grpc")
    started = chat.StartSession(pb.StartSessionRequest(topic_id=101, course_id=1), metadata=auth(user), timeout=20)
    assert started.session.topic_title == "Frações" and started.session.status == "active"
    assert started.opening.role == "assistant" and "Frações" in started.opening.content
    session_id = started.session.session_id
    events = list(chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content="o que é metade?", client_msg_id="c1"),
                                   metadata=auth(user), timeout=20))
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "accepted" and kinds[-1] == "reply" and set(kinds[1:-1]) <= {"delta"}, kinds
    assert events[0].accepted.client_msg_id == "c1"
    reply = events[-1].reply
    assert reply.message.content == reply_text(1, "o que é metade?") and reply.turn_id == events[0].accepted.turn_id
    assert reply.message.content.startswith("".join(event.delta.text for event in events[1:-1]))
    history = chat.GetHistory(pb.GetHistoryRequest(session_id=session_id), metadata=auth(user), timeout=10)
    assert [(m.id, m.role, m.content) for m in history.messages] == [
        (m.id, m.role, m.content) for m in stored_messages(session_id) if m.role != "system"
    ]


def test_refusals_are_grpc_statuses_with_the_parley_code(stack, api, chat):
    pb, _ = api
    owner = e2e.unique("grpc-owner")
    session_id = chat.StartSession(pb.StartSessionRequest(), metadata=auth(owner), timeout=20).session.session_id
    cases = [
        (lambda: chat.StartSession(pb.StartSessionRequest(), timeout=5), grpc.StatusCode.UNAUTHENTICATED, "missing_token"),
        (lambda: chat.StartSession(pb.StartSessionRequest(), metadata=[("authorization", "Bearer nope")], timeout=5),
         grpc.StatusCode.UNAUTHENTICATED, "invalid_token"),
        (lambda: list(chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content="oi"), metadata=auth(e2e.unique("other")), timeout=5)),
         grpc.StatusCode.PERMISSION_DENIED, "forbidden"),
        (lambda: list(chat.SendMessage(pb.SendMessageRequest(session_id="nope", content="oi"), metadata=auth(owner), timeout=5)),
         grpc.StatusCode.INVALID_ARGUMENT, "malformed_request"),
        (lambda: chat.GetHistory(pb.GetHistoryRequest(session_id="9b2f6d1e-4c7a-4f0e-8d3b-2a61c5e8f013"), metadata=auth(owner), timeout=5),
         grpc.StatusCode.NOT_FOUND, "session_not_found"),
        (lambda: chat.StartSession(pb.StartSessionRequest(topic_id=999999), metadata=auth(owner), timeout=5),
         grpc.StatusCode.NOT_FOUND, "topic_not_found"),
        (lambda: list(chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content="x" * 4001), metadata=auth(owner), timeout=5)),
         grpc.StatusCode.INVALID_ARGUMENT, "content_too_long"),
    ]
    for call, status, code in cases:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert (refused.value.code(), parley_code(refused.value)) == (status, code), refused.value.details()
    # Nothing of the refused messages was stored.
    assert [m.role for m in stored_messages(session_id)] == ["assistant"]


def test_a_deadline_ends_the_call_and_the_accepted_message_is_still_answered_and_stored(stack, api, chat):
    pb, _ = api
    user = e2e.unique("grpc-deadline")
    session_id = chat.StartSession(pb.StartSessionRequest(), metadata=auth(user), timeout=20).session.session_id
    content = "uma resposta lenta [sim:ttft=100,tps=10,tokens=30]"
    seen = []
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as ended:
        for event in chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content=content), metadata=auth(user), timeout=1.5):
            seen.append(event.WhichOneof("event"))
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    assert seen and seen[0] == "accepted" and "reply" not in seen, seen
    answers = wait_until(lambda: [m for m in stored_messages(session_id) if m.role == "assistant"][1:], 20, "the answer stored after the deadline")
    assert answers[0].content.startswith(reply_text(1, "uma resposta lenta")[:-2]), answers


def test_a_stream_cut_by_the_client_leaves_the_turn_answered_once(stack, api, chat):
    pb, _ = api
    user = e2e.unique("grpc-cut")
    session_id = chat.StartSession(pb.StartSessionRequest(), metadata=auth(user), timeout=20).session.session_id
    call = chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content="corte [sim:ttft=50,tps=10,tokens=30]"), metadata=auth(user), timeout=30)
    for event in call:
        if event.WhichOneof("event") == "delta":
            call.cancel()
            break
    answers = wait_until(lambda: [m for m in stored_messages(session_id) if m.role == "assistant"][1:], 20, "the answer stored after the cut")
    time.sleep(0.5)
    assert len([m for m in stored_messages(session_id) if m.role == "assistant"]) == 2
    assert answers[0].content.startswith("Resposta 1:")


def test_cancel_stops_a_long_answer_and_the_stream_ends_with_what_was_written(stack, api, chat):
    pb, _ = api
    user = e2e.unique("grpc-cancel")
    session_id = chat.StartSession(pb.StartSessionRequest(), metadata=auth(user), timeout=20).session.session_id
    events = []
    first_delta = threading.Event()

    def follow():
        for event in chat.SendMessage(pb.SendMessageRequest(session_id=session_id, content="longo [sim:ttft=50,tps=10,tokens=400]"),
                                      metadata=auth(user), timeout=30):
            events.append(event)
            if event.WhichOneof("event") == "delta":
                first_delta.set()

    reader = threading.Thread(target=follow)
    reader.start()
    assert first_delta.wait(15), "no delta within 15 s"
    started = time.monotonic()
    chat.Cancel(pb.CancelRequest(session_id=session_id, turn_id=events[0].accepted.turn_id), metadata=auth(user), timeout=5)
    reader.join(15)
    assert not reader.is_alive()
    reply = events[-1].reply
    assert reply.cancelled and time.monotonic() - started < 10
    assert len(reply.message.content.split()) < 400
    stored = [m for m in stored_messages(session_id) if m.role == "assistant"][-1]
    assert stored.content == reply.message.content


def test_a_course_question_is_answered_in_one_call_and_stored(stack, api, chat):
    pb, _ = api
    user = e2e.unique("grpc-course")
    answer = chat.AskQuestion(pb.AskQuestionRequest(lesson_context="Aula 3: frações equivalentes", question="1/2 é igual a 2/4?"),
                              metadata=auth(user), timeout=20)
    asked = "Lesson context:\nAula 3: frações equivalentes\n\nQuestion: 1/2 é igual a 2/4?"
    assert answer.answer == reply_text(1, asked)
    assert [(m.role, m.content) for m in stored_messages(answer.session_id)] == [("user", asked), ("assistant", answer.answer)]
