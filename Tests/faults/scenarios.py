"""The fault scenarios R1–R9 (issues 9 and 13). Each starts a stack of its own (its own AMQP
prefix, its own sessions), runs a load, injects its fault and returns a `Result`."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import faultkit as fk
from faultkit import FaultStack, Load, Result, e2e, log, now

QUEUE_SETTLE_SECONDS = 2.0  # see Tests/e2e/test_zz_broker_outage.py


@dataclass
class Options:
    quick: bool = False
    clients: int = 30
    r1_turns: int | None = None
    seed: int | None = None


def sim_requests(stack: FaultStack) -> int:
    return int(stack.sim_stats().get("requests", 0))


async def start_load(load: Load, warm_timeout: float = 60.0) -> asyncio.Task:
    task = asyncio.create_task(load.run())
    try:
        await asyncio.wait_for(load.warm.wait(), warm_timeout)
    except asyncio.TimeoutError:
        if task.done():
            task.result()  # raises what failed
        raise AssertionError(f"the load did not warm up within {warm_timeout:.0f} s: {load.progress()}")
    return task


async def finish_load(load: Load, task: asyncio.Task, timeout: float) -> None:
    load.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the clients did not finish within {timeout:.0f} s after the load stopped: {load.progress()}")


async def progress_reporter(load: Load, every: float = 10.0) -> None:
    while True:
        await asyncio.sleep(every)
        log(f"  … {load.progress()}, in flight {load.in_flight()}")


def fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.2f} {unit}"


# ---------------------------------------------------------------- R1


async def r1(stack: FaultStack, opts: Options, result: Result) -> None:
    turns = opts.r1_turns or (300 if opts.quick else 5000)
    max_kills = 2 if opts.quick else None
    interval = (1.0, 2.0) if opts.quick else (2.0, 4.0)
    calls_before = await fk.run_blocking(sim_requests, stack)
    load = Load(stack, opts.clients, max_turns=turns)
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    kills: list[dict] = []
    backs: list[asyncio.Task] = []
    try:
        while not task.done() and (max_kills is None or len(kills) < max_kills):
            await asyncio.sleep(random.uniform(*interval))
            if task.done() or load.sent >= turns:
                break
            live = [w for w in stack.workers if w.alive()]
            victim = random.choice(live)
            try:
                held = fk.metric_sum(await fk.run_blocking(fk.scrape, fk.metrics_url(victim)), "parley_worker_turns_in_flight")
            except RuntimeError:
                held = None
            in_flight = load.in_flight()
            at = now()
            await fk.run_blocking(victim.kill)
            replacement = stack.start_worker()
            kill = {"at": at, "victim": victim.name, "held": held, "in_flight": in_flight, "back": None}
            kills.append(kill)
            log(f"R1 kill {len(kills)}: SIGKILL {victim.name} (it held {held}; {in_flight} turns in flight), started {replacement.name}")

            async def back(kill=kill, proc=replacement):
                await fk.wait_healthy(proc)
                kill["back"] = now()

            backs.append(asyncio.create_task(back()))
        await asyncio.wait_for(asyncio.shield(task), 600)
        await asyncio.gather(*backs)
    finally:
        reporter.cancel()
        load.stop()
        await task
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    answered = result.figures["answered"]
    extra = calls - answered
    bound = sum(k["in_flight"] for k in kills)
    held = sum(k["held"] or 0 for k in kills)
    recoveries = [fk.recovery_after(load.turns, k["back"]) for k in kills if k["back"]]
    result.figures["recovery"] = max((r for r in recoveries if r is not None), default=None)
    result.figures["faults"] = f"{len(kills)} SIGKILLs"
    result.notes.append(
        f"{len(kills)} workers SIGKILLed (every {interval[0]:.0f}–{interval[1]:.0f} s, a replacement started at once); "
        f"extra LLM calls {extra} (calls {calls} − answered {answered}); turns in flight at the kills {bound} "
        f"(held by the victims: {held:.0f}); recovery = replacement healthy → first turn sent after it answered"
    )
    result.check("≥ 5,000 turns" if not opts.quick else "turns sent", result.figures["sent"] >= turns, f"{result.figures['sent']} sent")
    result.check("extra LLM calls ≤ turns in flight at the kills", extra <= bound, f"extra {extra}, bound {bound}")
    result.check("every accepted turn answered", answered == result.figures["accepted"],
                 f"{answered} of {result.figures['accepted']} (errors {result.figures['errors']})")


# ---------------------------------------------------------------- R2


async def r2(stack: FaultStack, opts: Options, result: Result) -> None:
    outage = 10.0
    await asyncio.sleep(max(0.0, QUEUE_SETTLE_SECONDS - (time.monotonic() - stack.topology_declared_at)))
    calls_before = await fk.run_blocking(sim_requests, stack)
    # A few clients keep quiet until the broker is down, then send: their messages meet
    # the outage at the gateway (the others wait on turns accepted before it).
    load = Load(stack, opts.clients, held=max(2, opts.clients // 5))
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    killed = False
    try:
        await asyncio.sleep(5)
        procs = stack.all_live()
        t_kill = now()
        await fk.run_blocking(stack.rabbitmq, "kill")
        load.release.set()
        killed = True
        log(f"R2: RabbitMQ SIGKILLed; restarting it in {outage:.0f} s")
        await asyncio.sleep(outage)
        t_restart = now()
        await fk.run_blocking(stack.rabbitmq, "restart-after-kill")
        killed = False
        t_back = now()
        log(f"R2: RabbitMQ back after {t_back - t_restart:.1f} s of start-up")
        health = await asyncio.gather(*(fk.poll_healthy_since(p, t_back, 60) for p in procs))
        await asyncio.sleep(20)
    finally:
        reporter.cancel()
        if killed:
            await fk.run_blocking(stack.rabbitmq, "restart-after-kill")
        await finish_load(load, task, load.reply_timeout + 30)
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    worst_health = max((h for h in health if h is not None), default=None)
    unhealthy = [p.name for p, h in zip(procs, health) if h is None]
    during = [t for t in load.turns if t_kill <= t.sent_at <= t_back]
    refused = Counter(t.code for t in load.turns if t.accepted_at is None and t.final in ("error", "closed"))
    refused_during = Counter(t.code for t in during if t.accepted_at is None and t.final in ("error", "closed"))
    slowest_refusal = max((t.done_at - t.sent_at for t in during if t.accepted_at is None and t.done_at), default=None)
    result.figures["recovery"] = fk.recovery_after(load.turns, t_back)
    result.figures["faults"] = f"broker down {t_back - t_kill:.1f} s"
    result.notes.append(
        f"broker SIGKILLed for {outage:.0f} s, then {t_back - t_restart:.1f} s to start; "
        f"/health 200 again after the restart: worst {fmt(worst_health)} ({', '.join(f'{p.name} {fmt(h)}' for p, h in zip(procs, health))}); "
        f"messages sent while the broker was down or starting {len(during)}, refused {dict(refused_during)} (slowest refusal {fmt(slowest_refusal)}); "
        f"refused in the whole run {dict(refused)}; recovery = broker back → first turn sent after it answered"
    )
    result.check("every process serves again ≤ 10 s after the broker is back",
                 not unhealthy and worst_health is not None and worst_health <= 10.0,
                 f"worst {fmt(worst_health)}" + (f"; never healthy: {unhealthy}" if unhealthy else ""))
    rec = result.figures["recovery"]
    result.check("a turn is answered ≤ 10 s after the broker is back", rec is not None and rec <= 10.0, f"recovery {fmt(rec)}")
    # `unconfirmed` is not a refusal: the broker may hold the turn (docs/protocol.md);
    # the session's next message then waits for that turn's reply or reply timeout.
    result.check("refused turns get `unavailable` (in-doubt publishes `unconfirmed`)",
                 set(refused) <= {"unavailable", "unconfirmed"} and refused_during.get("unavailable", 0) > 0,
                 f"refused with {dict(refused)}; {sum(refused_during.values())} during the outage")


# ---------------------------------------------------------------- R3


async def r3(stack: FaultStack, opts: Options, result: Result) -> None:
    outage = 10.0
    # More than one outage: a defect that shows in one outage out of two is then
    # caught by most runs (FAULTS_R3_OUTAGES).
    count = int(os.environ.get("FAULTS_R3_OUTAGES", "1" if opts.quick else "2"))
    calls_before = await fk.run_blocking(sim_requests, stack)
    load = Load(stack, opts.clients)
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    stopped = False
    windows: list[tuple[float, float]] = []
    try:
        for index in range(count):
            await asyncio.sleep(5 if index == 0 else 15)
            t_stop = now()
            await fk.run_blocking(stack.postgres, "stop")
            stopped = True
            log(f"R3: PostgreSQL stopped ({index + 1} of {count}); starting it in {outage:.0f} s")
            await asyncio.sleep(outage)
            await fk.run_blocking(stack.postgres, "start")
            stopped = False
            windows.append((t_stop, now()))
            log("R3: PostgreSQL back")
        await asyncio.sleep(20)
    finally:
        reporter.cancel()
        if stopped:
            await fk.run_blocking(stack.postgres, "start")
        await finish_load(load, task, load.reply_timeout + 30)
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    during = [t for t in load.turns if t.accepted_at is not None
              and any(t.accepted_at <= back and (t.done_at or 1e18) >= stop for stop, back in windows)]
    waited = [t for t in during if t.final == "reply" and any(t.done_at and t.done_at > back >= t.accepted_at for _, back in windows)]
    not_answered = [t for t in load.turns if t.accepted_at is not None and t.final != "reply"]
    recoveries = [fk.recovery_after(load.turns, back) for _, back in windows]
    result.figures["recovery"] = max((r for r in recoveries if r is not None), default=None)
    result.figures["faults"] = " + ".join(f"database down {back - stop:.1f} s" for stop, back in windows)
    result.notes.append(
        f"PostgreSQL stopped {len(windows)} time(s) for {outage:.0f} s, 15 s apart; {len(during)} accepted turns were open during an outage, "
        f"{len(waited)} of them answered after it; recovery = database back → first turn sent after it answered (worst of the outages)"
    )
    result.check("accepted turns wait and are answered", not not_answered,
                 f"{len(not_answered)} accepted turns not answered: {dict(Counter(t.code or t.final for t in not_answered))}")
    for t in not_answered[:10]:
        result.evidence.append(f"not answered: {t.describe()}")


# ---------------------------------------------------------------- R4

R4_FAULT_RATE = 0.3
R4_MARKED_SHARE = 0.1  # turns whose first attempt gets a 429 by a marker


async def r4(stack: FaultStack, opts: Options, result: Result) -> None:
    turns = 300 if opts.quick else 2000

    def content(client: int, n: int) -> str:
        text = f"c{client} m{n} {secrets.token_hex(3)}"
        if random.random() < R4_MARKED_SHARE:
            text += " [sim:status=429,retry_after=1,fail_first=1]"
        return text

    stats_before = await fk.run_blocking(stack.sim_stats)
    fallbacks_before = await fk.run_blocking(fk.workers_metric, stack, "parley_llm_fallbacks_total")
    load = Load(stack, opts.clients, max_turns=turns, content=content)
    task = await start_load(load, 120)
    reporter = asyncio.create_task(progress_reporter(load))
    try:
        await asyncio.wait_for(asyncio.shield(task), 900)
    finally:
        reporter.cancel()
        load.stop()
        await task
    stats = await fk.run_blocking(stack.sim_stats)
    calls = stats["requests"] - stats_before["requests"]
    faults = stats["faults"] - stats_before["faults"]
    fallbacks = await fk.run_blocking(fk.workers_metric, stack, "parley_llm_fallbacks_total") - fallbacks_before
    retries = await fk.run_blocking(fk.workers_metric, stack, "parley_llm_retries_total")
    llm_errors = {}
    for worker in stack.workers:
        if worker.alive():
            for name, labels, value in await fk.run_blocking(fk.scrape, fk.metrics_url(worker)):
                if name == "parley_llm_errors_total":
                    key = f"{labels.get('provider')}:{labels.get('code')}"
                    llm_errors[key] = llm_errors.get(key, 0) + value
    fk.summarize(result, load, stack, calls)
    errors = result.figures["errors"]
    result.figures["recovery"] = None
    result.figures["faults"] = f"{faults / calls:.0%} of LLM calls failed" if calls else "-"
    gemini_failed_all = stats.get("openai", 0) + stats.get("openai_stream", 0) - stats_before.get("openai", 0) - stats_before.get("openai_stream", 0)
    result.notes.append(
        f"simulator: {calls} calls, {faults} failed ({faults / max(calls, 1):.1%}; LLM_SIM_FAULT_RATE={R4_FAULT_RATE} with 503 + "
        f"retry_after=1, and {R4_MARKED_SHARE:.0%} of the messages ask for a 429 with retry_after=1 on their first attempt); "
        f"provider chain gemini → openai; fallbacks in parley_llm_fallbacks_total: {fallbacks:.0f} "
        f"(calls that reached the fallback: {gemini_failed_all}); retries in parley_llm_retries_total: {retries:.0f}; "
        f"parley_llm_errors_total: {json.dumps({k: int(v) for k, v in sorted(llm_errors.items())})}"
    )
    bad = {code: n for code, n in errors.items() if not code.startswith("llm_")}
    result.check("every turn answered or a specific llm_* error", not bad and result.figures["answered"] + sum(errors.values()) == result.figures["sent"],
                 f"answered {result.figures['answered']}, errors {errors}")
    result.check("fallbacks counted in the metrics", 0 < fallbacks <= gemini_failed_all,
                 f"parley_llm_fallbacks_total rose by {fallbacks:.0f}; the fallback provider got {gemini_failed_all} calls")


# ---------------------------------------------------------------- R5


async def restart_gateways_in_turn(stack: FaultStack, label: str, pause: float) -> list[dict]:
    """SIGTERMs each gateway in turn and starts it again on its port, `pause` seconds
    apart; what each step took."""
    steps = []
    for index in range(len(stack.gateways)):
        old = stack.gateways[index]
        at = now()
        old.terminate()
        code = await fk.run_blocking(old.popen.wait, 30)
        stopped = now()
        proc = stack.restart_gateway(index)
        await fk.wait_healthy(proc)
        steps.append({"what": old.name, "at": at, "stopped": stopped - at, "back": now(), "code": code})
        log(f"{label}: {old.name} stopped in {stopped - at:.1f} s (exit {code}), back after {now() - at:.1f} s")
        await asyncio.sleep(pause)
    return steps


async def r5(stack: FaultStack, opts: Options, result: Result) -> None:
    calls_before = await fk.run_blocking(sim_requests, stack)
    load = Load(stack, opts.clients)
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    steps: list[dict] = []
    try:
        await asyncio.sleep(3)
        steps += await restart_gateways_in_turn(stack, "R5", pause=3)
        for old in [w for w in stack.workers if w.alive()]:
            at = now()
            old.terminate()
            code = await fk.run_blocking(old.popen.wait, 30)
            stopped = now()
            proc = stack.start_worker()
            await fk.wait_healthy(proc)
            steps.append({"what": old.name, "at": at, "stopped": stopped - at, "back": now(), "code": code})
            log(f"R5: {old.name} stopped in {stopped - at:.1f} s (exit {code}), replacement healthy after {now() - at:.1f} s")
            await asyncio.sleep(2)
        await asyncio.sleep(5)
    finally:
        reporter.cancel()
        await finish_load(load, task, load.reply_timeout + 30)
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    recoveries = [fk.recovery_after(load.turns, s["back"]) for s in steps]
    result.figures["recovery"] = max((r for r in recoveries if r is not None), default=None)
    result.figures["faults"] = f"{len(steps)} SIGTERMs"
    result.notes.append(
        "rolling restart, one process at a time: " + "; ".join(
            f"{s['what']} drained in {s['stopped']:.1f} s (exit {s['code']})" for s in steps
        ) + f". Clients reconnected {load.reconnects} times and resumed {load.resumes} times; "
        f"{load.resume_answers} answers were found in a resume's history. Recovery = process back → first turn sent after it answered"
    )
    result.check("clients of a stopped gateway reconnect and resume", load.reconnects > 0 and load.resumes > 0,
                 f"{load.reconnects} reconnects, {load.resumes} resumes")
    result.check("every process exited 0 on SIGTERM", all(s["code"] == 0 for s in steps),
                 ", ".join(f"{s['what']}: {s['code']}" for s in steps))


# ---------------------------------------------------------------- R6


async def r6(stack: FaultStack, opts: Options, result: Result) -> None:
    duration = 20.0 if opts.quick else 60.0
    proxy = stack.proxy
    calls_before = await fk.run_blocking(sim_requests, stack)
    load = Load(stack, opts.clients)
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    events = []
    try:
        ends = now() + duration
        while now() < ends:
            await asyncio.sleep(random.uniform(2.0, 5.0))
            share = random.choice((0.25, 0.5, 1.0))
            event = await fk.run_blocking(proxy.reset, share)
            events.append((now(), event))
            log(f"R6: cut {event.cut} of {event.open_before} broker connections")
        await asyncio.sleep(5)
        procs = stack.all_live()
        health = await asyncio.gather(*(fk.poll_healthy_since(p, now(), 30) for p in procs))
    finally:
        reporter.cancel()
        await finish_load(load, task, load.reply_timeout + 30)
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    recoveries = [fk.recovery_after(load.turns, at) for at, _ in events]
    result.figures["recovery"] = max((r for r in recoveries if r is not None), default=None)
    cut = sum(e.cut for _, e in events)
    result.figures["faults"] = f"{len(events)} resets, {cut} connections cut"
    result.notes.append(
        f"{len(events)} resets in {duration:.0f} s (every 2–5 s, 25 %, 50 % or all of the open broker connections, RST), "
        f"{cut} connections cut, {proxy.accepted} opened through the proxy; recovery = reset → first turn sent after it answered"
    )
    unhealthy = [p.name for p, h in zip(procs, health) if h is None]
    result.check("0 hung turns (every turn ended)", result.figures["silent"] == 0 and result.figures["unacked"] == 0,
                 f"{result.figures['silent']} silent, {result.figures['unacked']} unacked")
    result.check("every process healthy after the resets", not unhealthy, f"unhealthy: {unhealthy}" if unhealthy else "all healthy")


# ---------------------------------------------------------------- R7


def dead_letters_cli(stack: FaultStack, *args: str) -> str:
    script = Path(stack.scripts_dir) / "dead-letters.sh"
    run = subprocess.run(
        ["bash", str(script), *args, "--prefix", stack.prefix, "--url", stack.amqp_url],
        capture_output=True, text=True, timeout=60,
    )
    if run.returncode != 0:
        raise AssertionError(f"dead-letters.sh {' '.join(args)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return run.stdout


def rabbitmq_dead_gauge(stack: FaultStack) -> float | None:
    env = {}
    for line in (Path(stack.rabbitmq_dir) / "node.env").read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    try:
        samples = fk.scrape(f"http://127.0.0.1:{env['RMQ_PROMETHEUS_PORT']}/metrics/per-object")
    except RuntimeError:
        return None
    return fk.metric_sum(samples, "rabbitmq_queue_messages", queue=f"{stack.prefix}.dead")


async def r7(stack: FaultStack, opts: Options, result: Result) -> None:
    import dead_letters as dl
    import pika

    url = stack.amqp_url
    prefix = stack.prefix
    poison_id = f"poison-{secrets.token_hex(4)}"
    f = result.figures
    f.update(sent=0, accepted=0, answered=0, errors={}, silent=0, unacked=0, dup_rows=0, dup_replies=0, llm_calls=None,
             calls_per_answer=None, worst_latency=None, recovery=None, faults="1 poison + 1 dead-lettered turn")
    calls_before = await fk.run_blocking(sim_requests, stack)

    # 1. The poison: not JSON, straight into the turns exchange.
    metric_before = await fk.run_blocking(fk.workers_metric, stack, "parley_worker_turns_total", outcome="dead_lettered")
    await fk.run_blocking(lambda: dl.publish(url, f"{prefix}.turns", "turn", b'{"v":1,"kind":"message","turn_id": oops', message_id=poison_id, type_="turn.message"))

    def poison_listed():
        return [l for l in dl.list_letters(url, prefix) if l["message_id"] == poison_id]

    listed = await e2e.async_wait_until(poison_listed, 15, f"the poison {poison_id} in {prefix}.dead")
    letter = listed[0]
    result.check("the poison turn lands in <prefix>.dead", letter["reason"] == "rejected" and letter["queue"] == f"{prefix}.turns",
                 f"reason {letter['reason']}, from {letter['queue']}, body {letter['body_preview']!r}")
    try:
        await e2e.async_wait_until(
            lambda: fk.workers_metric(stack, "parley_worker_turns_total", outcome="dead_lettered") >= metric_before + 1, 10,
            "parley_worker_turns_total{outcome=\"dead_lettered\"} to rise")
        rose = True
    except AssertionError:
        rose = False
    metric_after = await fk.run_blocking(fk.workers_metric, stack, "parley_worker_turns_total", outcome="dead_lettered")
    result.check("it shows in the worker metrics", rose, f'parley_worker_turns_total{{outcome="dead_lettered"}} {metric_before:.0f} → {metric_after:.0f}')
    try:
        gauge = await e2e.async_wait_until(lambda: (rabbitmq_dead_gauge(stack) or 0) >= 1 and rabbitmq_dead_gauge(stack), 20,
                                           f"rabbitmq_queue_messages{{queue=\"{prefix}.dead\"}} ≥ 1", interval=1.0)
    except AssertionError:
        gauge = None
    result.check("and in RabbitMQ's metrics", gauge is not None, f'rabbitmq_queue_messages{{queue="{prefix}.dead"}} = {gauge}')

    # 2. A real turn, dead-lettered: with no worker running, a client's accepted turn
    # is taken from the queue and rejected without requeue, as a worker does on its
    # last allowed delivery.
    client = await e2e.Client.connect(stack.ws_url(0), e2e.make_jwt(f"{prefix}-dl"), label="r7")
    try:
        await client.send({"type": "message", "content": "antes", "client_msg_id": "r7a"})
        session_id = (await client.expect("session"))["session_id"]
        await client.expect_turn(session_id=session_id, content="antes", n=1, client_msg_id="r7a")
        f["sent"] += 1; f["accepted"] += 1; f["answered"] += 1
        workers = [w for w in stack.workers if w.alive()]
        for w in workers:
            w.terminate()
        for w in workers:
            await fk.run_blocking(w.popen.wait, 30)
        t0 = now()
        await client.message("perdida e achada", session_id=session_id, client_msg_id="r7b")
        f["sent"] += 1
        accepted = await client.expect("accepted", 15, session_id=session_id, client_msg_id="r7b")
        f["accepted"] += 1
        turn_id = accepted["turn_id"]

        def take_and_reject():
            connection = pika.BlockingConnection(pika.URLParameters(url))
            try:
                channel = connection.channel()
                method, properties, body = channel.basic_get(f"{prefix}.turns", auto_ack=False)
                if method is None:
                    return None
                channel.basic_reject(method.delivery_tag, requeue=False)
                return json.loads(body), properties.message_id
            finally:
                connection.close()

        taken = await e2e.async_wait_until(take_and_reject, 10, "the turn in the turns queue")
        body, message_id = taken
        result.check("a valid turn dead-lettered", str(body.get("turn_id")).lower() == turn_id.lower(), f"took turn {body.get('turn_id')} (message id {message_id})")
        listing = await fk.run_blocking(dead_letters_cli, stack, "list")
        result.evidence.append("dead-letters.sh list:\n" + listing.rstrip())
        result.check("`dead-letters.sh list` shows both", poison_id in listing and (message_id or turn_id) in listing and "2 message(s)" in listing,
                     listing.splitlines()[0] if listing else "no output")

        for _ in workers:
            stack.start_worker()
        await asyncio.gather(*(fk.wait_healthy(w) for w in stack.workers if w.alive()))
        requeued = await fk.run_blocking(dead_letters_cli, stack, "requeue")
        result.evidence.append("dead-letters.sh requeue:\n" + requeued.rstrip())
        reply = await client.expect_reply(session_id=session_id, turn_id=turn_id, text=e2e.reply_text(2, "perdida e achada"), timeout=30)
        f["answered"] += 1
        f["worst_latency"] = now() - t0
        stored = fk.stored_assistant([turn_id]).get(turn_id, 0)
        result.check("`dead-letters.sh requeue` brings the turn back: answered, stored once",
                     "requeued: 1" in requeued and poison_id in requeued and stored == 1,
                     f"{requeued.strip().splitlines()}; reply message {reply['message']['id']}; assistant rows {stored}")
        after = await fk.run_blocking(dead_letters_cli, stack, "list", "--json")
        left = json.loads(after)
        result.check("the poison stays until discarded", [l["message_id"] for l in left] == [poison_id], f"left: {[l['message_id'] for l in left]}")
        await fk.run_blocking(dead_letters_cli, stack, "discard", "--id", poison_id)
        empty = json.loads(await fk.run_blocking(dead_letters_cli, stack, "list", "--json"))
        result.check("`dead-letters.sh discard --id` removes it", empty == [], f"left: {empty}")
        # Nothing else arrives for that session: no second reply.
        extra = []
        try:
            while True:
                extra.append(await client.recv(2.0))
        except AssertionError:
            pass
        dup = [fr for fr in extra if fr.get("type") == "reply"]
        f["dup_replies"] = len(dup)
        f["dup_rows"] = len(e2e.duplicate_turn_roles([session_id]))
        result.check("0 duplicates", not dup and f["dup_rows"] == 0, f"{len(dup)} extra replies, {f['dup_rows']} duplicate rows")
    finally:
        await client.close()
    f["llm_calls"] = await fk.run_blocking(sim_requests, stack) - calls_before
    f["calls_per_answer"] = f["llm_calls"] / max(f["answered"], 1)


# ---------------------------------------------------------------- R8

CLUSTER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "rabbitmq_cluster.sh"
NODE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "rabbitmq.sh"


def cluster_ctl(stack: FaultStack, node: int, *args: str) -> str:
    result = subprocess.run(["bash", str(NODE_SCRIPT), "ctl", f"{stack.cluster_dir}/node{node}", "-q", *args],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl on node {node}: {result.stderr.strip()[-500:]}")
    return result.stdout


def turn_queue_leader(stack: FaultStack, ask: int) -> int | None:
    """Which node (1..3) leads the turn queue, asking node `ask`; None while none does."""
    rows = json.loads(cluster_ctl(stack, ask, "list_queues", "name", "leader", "--formatter", "json") or "[]")
    for row in rows:
        if row.get("name") == f"{stack.prefix}.turns":
            leader = str(row.get("leader", ""))
            for node, port in enumerate(stack.cluster_ports, start=1):
                if leader.startswith(f"parley-{port}@"):
                    return node
    return None


def node_with_most_connections(stack: FaultStack, ask: int, among: list[int]) -> int:
    """The node (of `among`) that serves the most of this stack's AMQP connections."""
    rows = json.loads(cluster_ctl(stack, ask, "list_connections", "port", "--formatter", "json") or "[]")
    counts = Counter(int(row["port"]) for row in rows if "port" in row)
    return max(among, key=lambda node: counts.get(stack.cluster_ports[node - 1], 0))


def node_script(stack: FaultStack, action: str, node: int) -> None:
    subprocess.run(["bash", str(NODE_SCRIPT), action, f"{stack.cluster_dir}/node{node}"], check=True, capture_output=True, timeout=120)


async def r8(stack: FaultStack, opts: Options, result: Result) -> None:
    calls_before = await fk.run_blocking(sim_requests, stack)
    load = Load(stack, opts.clients)
    task = await start_load(load)
    reporter = asyncio.create_task(progress_reporter(load))
    down: int | None = None
    events: list[dict] = []
    try:
        for step, what in enumerate(("the turn queue's leader", "a node the processes are connected to")):
            await asyncio.sleep(5)
            live = [n for n in (1, 2, 3)]
            ask = live[0]
            if step == 0:
                victim = await fk.run_blocking(turn_queue_leader, stack, ask)
                assert victim is not None, "the turn queue has no leader before the fault"
            else:
                victim = await fk.run_blocking(node_with_most_connections, stack, ask, live)
            procs = stack.all_live()
            at = now()
            await fk.run_blocking(node_script, stack, "kill", victim)
            down = victim
            log(f"R8: SIGKILLed node {victim} ({what})")
            await asyncio.sleep(0.5)
            survivor = next(n for n in (1, 2, 3) if n != victim)
            leader, elected = None, None
            ends = now() + 30
            while now() < ends:
                try:
                    leader = await fk.run_blocking(turn_queue_leader, stack, survivor)
                except RuntimeError:
                    leader = None
                if leader is not None and leader != victim:
                    elected = now() - at
                    break
                await asyncio.sleep(0.2)
            health = await asyncio.gather(*(fk.poll_healthy_since(p, at, 60) for p in procs))
            await asyncio.sleep(10)
            events.append({"victim": victim, "what": what, "at": at, "leader": leader, "elected": elected,
                           "health": max((h for h in health if h is not None), default=None),
                           "unhealthy": [p.name for p, h in zip(procs, health) if h is None],
                           "recovery": fk.recovery_after(load.turns, at)})
            await fk.run_blocking(node_script, stack, "restart-after-kill", victim)
            down = None
            log(f"R8: node {victim} restarted")
        await asyncio.sleep(5)
    finally:
        reporter.cancel()
        if down is not None:
            await fk.run_blocking(node_script, stack, "restart-after-kill", down)
        await finish_load(load, task, load.reply_timeout + 30)
    calls = await fk.run_blocking(sim_requests, stack) - calls_before
    fk.summarize(result, load, stack, calls)
    result.figures["recovery"] = max((e["recovery"] for e in events if e["recovery"] is not None), default=None)
    result.figures["faults"] = " + ".join(f"node {e['victim']} SIGKILLed" for e in events)
    for e in events:
        result.notes.append(
            f"{e['what']}: node {e['victim']} SIGKILLed; the turn queue led by node {e['leader']} (read {fmt(e['elected'])} after the kill); "
            f"every process healthy within {fmt(e['health'])}; first turn answered after it {fmt(e['recovery'])}"
        )
        result.check(f"the turn queue has a live leader after losing {e['what']}", e["elected"] is not None and e["elected"] <= 30,
                     f"leader node {e['leader']} after {fmt(e['elected'])}")
        result.check(f"every process serves ≤ 10 s after losing {e['what']}",
                     not e["unhealthy"] and e["health"] is not None and e["health"] <= 10.0,
                     f"worst {fmt(e['health'])}" + (f"; never healthy: {e['unhealthy']}" if e["unhealthy"] else ""))
    result.check("every accepted turn answered", result.figures["answered"] == result.figures["accepted"],
                 f"{result.figures['answered']} of {result.figures['accepted']} (errors {result.figures['errors']})")


# ---------------------------------------------------------------- R9

HAPROXY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


def start_balancer(stack: FaultStack) -> subprocess.Popen:
    """HAProxy with deploy/haproxy/haproxy.cfg in front of the stack's two gateways."""
    (port,) = e2e.free_ports(1)
    environment = os.environ | {
        "PARLEY_LB_BIND": f"127.0.0.1:{port}",
        "PARLEY_GATEWAY_1": f"127.0.0.1:{stack.gateways[0].extra['port']}",
        "PARLEY_GATEWAY_2": f"127.0.0.1:{stack.gateways[1].extra['port']}",
    }
    log_file = open(stack.tmp / "haproxy.log", "ab")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(HAPROXY_CONFIG)], env=environment, stdout=log_file, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    e2e.wait_until(lambda: e2e.http_get(f"http://127.0.0.1:{port}/health")[0] == 200, 15, "HAProxy to serve /health")
    stack.balancer_port = port
    return proc


async def r9(stack: FaultStack, opts: Options, result: Result) -> None:
    balancer = await fk.run_blocking(start_balancer, stack)
    steps: list[dict] = []
    served: list[float] = []
    try:
        calls_before = await fk.run_blocking(sim_requests, stack)
        load = Load(stack, opts.clients)
        task = await start_load(load)
        reporter = asyncio.create_task(progress_reporter(load))
        try:
            await asyncio.sleep(3)
            # HAProxy spread the clients over both gateways (sockets open on each now).
            served = [fk.metric_sum(await fk.run_blocking(fk.scrape, f"http://127.0.0.1:{g.extra['internal_port']}/metrics"),
                                    "parley_gateway_ws_connections") for g in stack.gateways]
            steps += await restart_gateways_in_turn(stack, "R9", pause=4)
            await asyncio.sleep(3)
        finally:
            reporter.cancel()
            await finish_load(load, task, load.reply_timeout + 30)
        calls = await fk.run_blocking(sim_requests, stack) - calls_before
        fk.summarize(result, load, stack, calls)
    finally:
        balancer.terminate()
        balancer.wait(timeout=10)
    recoveries = [fk.recovery_after(load.turns, s["back"]) for s in steps]
    result.figures["recovery"] = max((r for r in recoveries if r is not None), default=None)
    result.figures["faults"] = f"{len(steps)} gateway restarts behind HAProxy"
    result.notes.append(
        "every socket through HAProxy (deploy/haproxy/haproxy.cfg, leastconn, health checks every 500 ms); each gateway restarted in turn: "
        + "; ".join(f"{s['what']} drained in {s['stopped']:.1f} s (exit {s['code']})" for s in steps)
        + f". Clients reconnected {load.reconnects} times (to whichever gateway HAProxy chose) and resumed {load.resumes} times; "
        f"sockets open on each gateway before the restarts: {', '.join(f'{v:.0f}' for v in served)}"
    )
    result.check("clients reconnect through HAProxy and resume", load.reconnects > 0 and load.resumes > 0,
                 f"{load.reconnects} reconnects, {load.resumes} resumes")
    result.check("both gateways serve sockets behind the one address", all(v > 0 for v in served), f"{served}")
    result.check("every accepted turn answered", result.figures["answered"] == result.figures["accepted"],
                 f"{result.figures['answered']} of {result.figures['accepted']} (errors {result.figures['errors']})")


SCENARIOS = {
    "R1": ("SIGKILL a random worker every few seconds", r1),
    "R2": ("SIGKILL RabbitMQ, restart it 10 s later", r2),
    "R3": ("stop PostgreSQL for 10 s (twice)", r3),
    "R4": ("30 % of LLM calls fail (429/503 with retry hints), fallback configured", r4),
    "R5": ("rolling restart (SIGTERM each gateway and worker in turn)", r5),
    "R6": ("broker TCP connections reset at random", r6),
    "R7": ("a poison turn and a dead-lettered turn: list, requeue, discard", r7),
    "R8": ("a 3-node RabbitMQ cluster: SIGKILL the turn queue's leader, then a node the processes use", r8),
    "R9": ("two gateways behind HAProxy, each restarted in turn under load", r9),
}


def stack_for(name: str, opts: Options) -> FaultStack:
    if name == "R4":
        return FaultStack(name, overrides={"sim": {"LLM_SIM_FAULT_RATE": str(R4_FAULT_RATE), "LLM_SIM_FAULT": "status=503,retry_after=1",
                                                   "LLM_SIM_SEED": str(opts.seed or 1)}})
    if name == "R6":
        from tcp_proxy import ResettingProxy

        real = e2e.env("PARLEY_TEST_AMQP_URL")
        host_port = real.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        proxy = ResettingProxy(host, int(port)).start()
        stack = FaultStack(name, amqp_url=real.replace(f":{port}/", f":{proxy.port}/"))
        stack.proxy = proxy
        return stack
    if name == "R2":
        # Turns accepted just before the crash wait for the broker's ~10 s outage and
        # its start-up: a deadline (reply timeout − 10 s) that outlives both.
        return FaultStack(name, overrides={"gateway": {"REPLY_TIMEOUT_SECONDS": "60"}})
    if name == "R8":
        # A cluster of its own (45 s to start), every process given all three nodes.
        cluster_dir = Path(tempfile.mkdtemp(prefix="parley-faults-cluster-"))
        ports = [str(p) for p in e2e.free_ports(3)]
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(cluster_dir), "3", *ports], check=True, timeout=300)
        urls = subprocess.run(["bash", str(CLUSTER_SCRIPT), "urls", str(cluster_dir)], check=True, capture_output=True, text=True).stdout.strip()
        stack = FaultStack(name, amqp_url=urls,
                           overrides={role: {"AMQP_QUORUM_GROUP_SIZE": "3"} for role in ("gateway", "worker")}
                           | {"gateway": {"AMQP_QUORUM_GROUP_SIZE": "3", "REPLY_TIMEOUT_SECONDS": "60"}})
        stack.cluster_dir = str(cluster_dir)
        stack.cluster_ports = [int(p) for p in ports]
        return stack
    if name == "R7":
        # The turn dead-lettered in R7 waits for workers to start: a longer deadline.
        return FaultStack(name, overrides={"gateway": {"REPLY_TIMEOUT_SECONDS": "90"}})
    return FaultStack(name)
