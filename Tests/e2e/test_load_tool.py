"""parley-load, the benchmark's load tool, against the real stack: a few seconds of
each of its commands, so that the tool keeps working (the benchmark itself runs in
scripts/bench.sh, not here: no test asserts a time)."""

from __future__ import annotations

import json
import subprocess

import parley_e2e as e2e


def load(stack, *arguments: str, timeout: float = 90) -> dict:
    out = stack.tmp / f"load-{e2e.unique('r')}.json"
    completed = subprocess.run(
        [str(stack.bin_dir / "parley-load"), *arguments, "--url", stack.ws_url(0), "--jwt-secret", e2e.JWT_SECRET,
         "--user-prefix", e2e.unique("load"), "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=timeout,
    )
    assert completed.returncode == 0, f"parley-load failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
    return json.loads(out.read_text())


def test_a_closed_loop_run_answers_every_turn_and_reports_its_figures(stack):
    result = load(stack, "turns", "--clients", "4", "--sessions-per-client", "2", "--duration", "3", "--warmup", "1",
                  "--message-bytes", "200")
    assert result["sessions"] == 8 and result["connections"] == 4
    assert result["turns"] > 0 and result["replies"] == result["turns"], result
    assert result["errors"] == {} and result["other_errors"] == {} and result["unexpected_replies"] == 0, result
    latency = result["latency_milliseconds"]
    for kind in ("accepted", "first_delta", "reply"):
        assert latency[kind]["count"] == result["replies"], (kind, latency)
        assert 0 < latency[kind]["p50"] <= latency[kind]["p99"] <= latency[kind]["max"], (kind, latency)
    assert latency["accepted"]["p50"] <= latency["reply"]["p50"]
    assert result["turns_per_second"] > 0
    assert sum(second["replies"] for second in result["series"]) >= result["replies"]
    assert any(p["name"] == "parley-load" and p["cpu_seconds"] > 0 for p in result["processes"])


def test_an_open_loop_run_sends_at_the_rate_it_was_given(stack):
    result = load(stack, "turns", "--clients", "3", "--rate", "12", "--duration", "3", "--warmup", "1")
    # 12 turns/s for 3 s, sent on time whatever the answers do: 36, give or take the
    # turns of the window's edges.
    assert 30 <= result["turns"] <= 40, result["turns"]
    assert result["errors"] == {} and result["replies"] == result["turns"], result


def test_a_reply_is_fanned_out_to_both_sockets_of_every_session(stack):
    out = stack.tmp / f"sockets-{e2e.unique('r')}.json"
    gateway_pid = stack.gateways[0].pid
    completed = subprocess.run(
        [str(stack.bin_dir / "parley-load"), "sockets", "--url", stack.ws_url(0), "--jwt-secret", e2e.JWT_SECRET,
         "--user-prefix", e2e.unique("fan"), "--sockets", "20", "--hold", "0.5", "--rate", "50",
         "--watch", f"gateway={gateway_pid}", "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=90,
    )
    assert completed.returncode == 0, f"parley-load sockets failed:\n{completed.stdout}\n{completed.stderr}"
    result = json.loads(out.read_text())
    assert (result["opened"], result["sessions"], result["listeners"]) == (20, 10, 10), result
    assert result["turns_sent"] == 10 and result["fanned_out"] == 10 and result["errors"] == {}, result
    assert result["fanout_milliseconds"]["count"] == 10
    assert result["memory"][0]["name"] == "gateway" and result["memory"][0]["resident_megabytes_idle"] > 0
