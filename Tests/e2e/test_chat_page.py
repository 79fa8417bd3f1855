"""The web chat page at `/`, in a real browser (headless Chromium driven by Selenium):
accounts, the streamed answer, a reload and a dropped connection in the middle of an
answer, stop, a completed topic, errors in plain words, a phone's width.

The page runs on a gateway of its own with ACCOUNTS=on and the topic catalog. What
the page shows is checked against what PostgreSQL stored. With PARLEY_E2E_SCREENSHOTS
set to a folder, the tests write the README's screenshots there (docs/images)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import parley_e2e as e2e
from chat_browser import DESKTOP, PHONE, ChatPage, browser_missing
from parley_e2e import make_jwt, psql, session_row, sql_literal, stored_messages

SCREENSHOTS = os.environ.get("PARLEY_E2E_SCREENSHOTS")
PASSWORD = "a long enough password"

if browser_missing():
    pytest.fail(browser_missing(), pytrace=False)


@pytest.fixture(scope="module")
def page_gateway(stack):
    proc = stack.start_gateway(len(stack.gateways), extra_env={"ACCOUNTS": "on"})
    proc.wait_healthy()
    yield proc
    proc.terminate()
    stack.gateways.remove(proc)


@pytest.fixture
def open_page(stack, page_gateway):
    """Opens Chromium windows on the page's gateway, and closes them after the test."""
    pages: list[ChatPage] = []

    def opener(size=DESKTOP) -> ChatPage:
        page = ChatPage(f"http://127.0.0.1:{page_gateway.extra['port']}", size)
        pages.append(page)
        page.open()
        return page

    yield opener
    for page in pages:
        page.close()


def account_name(prefix: str) -> str:
    return e2e.unique(prefix).lower().replace("_", "-")[:60]


def normalized(text: str) -> str:
    """Text as the browser renders it (Selenium's .text trims and folds spaces at the ends of lines)."""
    return "\n".join(line.strip() for line in text.strip().splitlines())


def session_of(page: ChatPage) -> str:
    session_id = page.wait(lambda: page.local_storage("session"), 15, "an open session")
    return session_id


def stored_answers(session_id: str) -> list[e2e.StoredMessage]:
    return [m for m in stored_messages(session_id) if m.role == "assistant"]


def sign_in_with_token(page: ChatPage, user: str) -> None:
    page.use_token(make_jwt(user))
    page.wait(lambda: page.visible("app"), 15, "the chat after using a token")
    page.wait_connected()


def start_chat(page: ChatPage, text: str) -> str:
    """Sends the first message of a new chat; returns its session id once the opening is shown."""
    page.say(text)
    session_id = session_of(page)
    page.wait(lambda: any(m.role == "user" for m in page.messages()), 10, "the message sent")
    return session_id


def wait_streaming(page: ChatPage, timeout: float = 15) -> None:
    """Until the answer to the last message, which Parley has taken, is being streamed
    (not the tutor's opening, which may still stream when the first message is sent)."""

    def streaming() -> bool:
        shown = page.messages()
        return (
            len(shown) >= 3 and shown[-2].role == "user" and shown[-2].state == "sent"
            and shown[-1].role == "assistant" and shown[-1].state == "streaming" and bool(shown[-1].text.strip())
        )

    page.wait(streaming, timeout, "the answer being streamed")


def wait_whole_answer(page: ChatPage, session_id: str, answers: int, timeout: float = 30) -> e2e.StoredMessage:
    """The session's `answers`-th stored answer, once the page shows it whole."""
    stored = e2e.wait_until(lambda: (lambda a: a if len(a) >= answers else None)(stored_answers(session_id)), timeout, f"{answers} stored answers")
    reply = stored[answers - 1]
    page.wait(
        lambda: any(m.stored_id == str(reply.id) and m.state == "stored" and normalized(m.text) == normalized(reply.content) for m in page.answers()),
        timeout,
        f"the whole stored answer {reply.id}",
    )
    return reply


def test_a_new_account_chats_and_sees_the_answer_streamed_then_whole(stack, open_page):
    user = account_name("page-ana")
    page = open_page()
    page.sign_up(user, PASSWORD)
    page.wait_connected()
    assert page.text("who") == f"Signed in as {user}"
    session_id = start_chat(page, "Olá! O que é uma fração? [sim:ttft=100,tps=25,tokens=50]")
    wait_streaming(page)
    reply = wait_whole_answer(page, session_id, answers=2)
    # An account's user id is in a namespace of its own.
    assert session_row(session_id)["user_id"] == f"account:{user}"
    shown = [(m.role, normalized(m.text)) for m in page.messages()]
    stored = [(m.role, normalized(m.content)) for m in stored_messages(session_id) if m.role != "system"]
    assert shown == stored, (shown, stored)
    assert reply.content.startswith("Resposta 1:")
    # The sessions list names the chat by its first message.
    page.wait(lambda: "O que é uma fração?" in page.text("sessions"), 10, "the session in the list")
    # The content security policy allows everything the page does: no refusals.
    assert page.console_errors() == []
    if SCREENSHOTS:
        page.screenshot(Path(SCREENSHOTS) / "chat-desktop.png")

    # Another browser logs in to the same account and finds the conversation.
    other = open_page()
    other.log_in(user, "not the password")
    other.wait(lambda: other.text("sign-in-error") == "The user name or the password is wrong.", 10, "the wrong-password error")
    other.log_in(user, PASSWORD)
    other.wait_connected()
    # Its list has the session; picking it shows the stored conversation.
    other.wait(lambda: other.driver.find_elements("css selector", "#sessions .session-button"), 10, "the sessions list")
    other.driver.find_element("css selector", "#sessions .session-button").click()
    other.wait(lambda: len(other.messages()) == 3, 15, "the stored conversation")
    assert [normalized(m.text) for m in other.messages()] == [text for _, text in stored]
    assert psql(f"SELECT last_login_at IS NOT NULL FROM accounts WHERE user_id = {sql_literal('account:' + user)}") == [["t"]]


def test_a_reload_in_the_middle_of_an_answer_shows_the_whole_reply_once(stack, open_page):
    page = open_page()
    sign_in_with_token(page, e2e.unique("page-reload"))
    question = "Conte uma história longa [sim:ttft=100,tps=12,tokens=48]"
    session_id = start_chat(page, question)
    wait_streaming(page)
    page.driver.refresh()
    page.wait_connected()
    reply = wait_whole_answer(page, session_id, answers=2)
    # The question is back above its answer (read from the store), and nothing twice.
    page.wait(lambda: [m.role for m in page.messages()] == ["assistant", "user", "assistant"], 10, "opening, question, answer")
    assert normalized(page.messages()[1].text) == normalized(question)
    assert normalized(page.messages()[2].text) == normalized(reply.content)


def test_stop_ends_a_long_answer_and_keeps_what_was_written(stack, open_page):
    page = open_page()
    sign_in_with_token(page, e2e.unique("page-stop"))
    session_id = start_chat(page, "Explique tudo [sim:ttft=50,tps=10,tokens=400]")
    wait_streaming(page)
    page.wait(lambda: page.visible("stop"), 5, "the Stop button")
    started = time.monotonic()
    page.element("stop").click()
    page.wait(lambda: any("Stopped" in m.note for m in page.answers()), 10, "the stopped answer")
    assert time.monotonic() - started < 10
    stopped = [m for m in page.answers() if "Stopped" in m.note][0]
    rows = psql(f"SELECT cancelled, content FROM messages WHERE session_id = {sql_literal(session_id)} AND role = 'assistant' ORDER BY id")
    assert rows[-1][0] == "t", rows
    assert normalized(stopped.text) == normalized(rows[-1][1])
    assert len(rows[-1][1].split()) < 400
    assert not page.visible("stop")


def test_a_training_topic_is_completed_and_the_page_says_so(stack, open_page):
    page = open_page()
    sign_in_with_token(page, e2e.unique("page-topic"))
    page.wait(lambda: "Frações" in page.text("topic-select"), 10, "the catalog's topics")
    select = page.element("topic-select")
    for option in select.find_elements("css selector", "option"):
        if option.text.endswith("Frações"):
            option.click()
    page.element("topic-form").find_element("css selector", "button").click()
    session_id = session_of(page)
    page.wait(lambda: any("Frações" in m.text for m in page.answers()), 15, "the tutor's opening on the topic")
    page.say("Acho que entendi")
    wait_whole_answer(page, session_id, answers=2)
    page.say("eu domino frações")
    page.wait(lambda: page.visible("completed-banner"), 20, "the topic completed banner")
    assert not page.element("composer-input").is_enabled()
    assert session_row(session_id)["status"] == "completed"
    assert all("{TOPIC_COMPLETED}" not in m.text for m in page.messages())
    page.wait(lambda: "Completed" in page.text("sessions"), 10, "the session marked completed in the list")
    if SCREENSHOTS:
        page.screenshot(Path(SCREENSHOTS) / "chat-topic-completed.png")


def test_a_dropped_connection_is_reconnected_and_the_answer_stored_meanwhile_shows_once(stack, open_page, page_gateway):
    page = open_page()
    sign_in_with_token(page, e2e.unique("page-drop"))
    session_id = start_chat(page, "Uma resposta lenta [sim:ttft=100,tps=10,tokens=40]")
    wait_streaming(page)
    page_gateway.kill()
    page.wait(lambda: page.text("connection").startswith("Connection lost"), 10, "the lost connection")
    assert not page.element("send").is_enabled()
    # The worker finishes and stores the answer while the page has no gateway.
    e2e.wait_until(lambda: len(stored_answers(session_id)) >= 2, 30, "the answer stored while the gateway is down")
    page_gateway.start()
    page_gateway.wait_healthy()
    page.wait_connected(timeout=30)
    reply = wait_whole_answer(page, session_id, answers=2)
    # Once: the half-streamed copy is gone, and nothing is left "in progress".
    page.wait(lambda: [m.role for m in page.messages()] == ["assistant", "user", "assistant"], 10, "opening, question, answer")
    assert all(m.state == "stored" for m in page.messages()), page.messages()
    assert not page.visible("stop")
    assert reply.content.startswith("Resposta 1:")


def test_errors_are_shown_in_plain_words(stack, open_page):
    page = open_page()
    page.use_token("not-a-token")
    page.wait(lambda: page.text("sign-in-error") == "That token is not valid here.", 10, "the invalid token error")
    sign_in_with_token(page, e2e.unique("page-errors"))
    start_chat(page, "Isto falha [sim:status=400]")
    page.wait(
        lambda: any(m.note == "Not answered: The tutor refused the request. Tell the people who run Parley." for m in page.messages()),
        20,
        "the refusal in plain words",
    )
    page.say("x" * 4001)
    page.wait(lambda: any(m.note.startswith("Not sent: That message is too long") for m in page.messages()), 10, "too long, in plain words")


def test_the_page_fits_a_phone_and_every_control_is_labelled(stack, open_page):
    page = open_page(PHONE)
    sign_in_with_token(page, e2e.unique("page-phone"))
    start_chat(page, "Olá do telefone")
    page.wait(lambda: len([m for m in page.answers() if m.state == "stored"]) == 2, 20, "the answer")
    fits = page.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")
    assert fits, "the page scrolls sideways at a phone's width"
    unlabelled = page.driver.execute_script(
        """return [...document.querySelectorAll('input, select, textarea, button')]
             .filter(e => e.offsetParent !== null)
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-labelledby') && !e.textContent.trim())
             .map(e => e.id || e.outerHTML.slice(0, 60));"""
    )
    assert unlabelled == [], unlabelled
    assert page.driver.execute_script("return window.innerWidth;") == PHONE[0]
    if SCREENSHOTS:
        page.screenshot(Path(SCREENSHOTS) / "chat-phone.png")
    # Keyboard only: on a freshly loaded page the skip link is the first stop and leads
    # to the message box.
    page.driver.refresh()
    page.wait_connected()
    page.driver.switch_to.active_element.send_keys("\ue004")  # Tab
    assert page.driver.switch_to.active_element.text == "Skip to the message box"
    page.driver.switch_to.active_element.send_keys("\ue007")  # Enter
    assert page.driver.switch_to.active_element.get_attribute("id") == "composer-input"
