"""Observability, checked rather than eyeballed: prometheus.yml passes promtool, both
kinds of /metrics pass `promtool check metrics`, the Grafana dashboard is well formed
and every one of its queries returns data from a real Prometheus scraping the running
stack under load, and compose.yaml is valid and consistent with the rest of the repo.

Named test_zx_… so that it runs after the functional tests and before the outage tests
(which stop the database and the broker)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import pytest

import observability as obs
import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, run, wait_until

# How long the live check may load the stack before it names the panels without data.
DASHBOARD_DEADLINE = 60.0
# After each round of load: how long to poll Prometheus before the next round.
POLL_AFTER_ROUND = 4.0

SERVICES = {"rabbitmq", "postgres", "migrate", "llm-sim", "gateway", "worker", "prometheus", "grafana"}
PARLEY_SERVICES = {"migrate", "llm-sim", "gateway", "worker"}
ONE_SHOT = {"migrate"}
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
UNIQUE_NAME = re.compile(r'="[^"]*-[0-9a-f]{8}"')


def need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not on PATH: install Debian's prometheus package "
                    "(scripts/lib/deps.sh does, for run.sh and test.sh)")


# ---------------------------------------------------------------- load


async def finish_turn(client, session_id: str, *, client_msg_id: str | None) -> dict:
    """Waits for the turn's `accepted`, then its `reply` or `error` (resets skipped)."""
    accepted = await client.expect("accepted", 20, session_id=session_id, client_msg_id=client_msg_id)
    while True:
        frame = await client.recv(30, waiting_for=f"the end of turn {accepted['turn_id']}")
        if frame.get("turn_id") == accepted["turn_id"] and frame.get("type") in ("reply", "error"):
            return frame


async def load_round(stack, n: int) -> None:
    """One round of the traffic every panel needs: streamed turns, an LLM retry, a
    fallback from Gemini to OpenAI, an LLM failure, refused frames, and a platform
    topic tutored to completion (its notice goes through the outbox)."""
    tag = e2e.unique(f"obs{n}")
    token = make_jwt(e2e.unique("observer"))
    async with Sockets() as sockets:
        chat = await sockets.open(stack.ws_url(0), token, label=f"obs-chat-{n}")
        await chat.send(f"métricas, rodada {n} {tag}")
        session_id = (await chat.expect("session"))["session_id"]
        steps = [
            ("plain", f"mais uma {tag}", "reply"),
            ("retry", f"[sim:status=503,fail_first=1] tenta de novo {tag}", "reply"),
            ("fallback", f"[sim:status=503,only=gemini] outro provedor {tag}", "reply"),
            ("failure", f"[sim:status=503] falha {tag}", "error"),
        ]
        await finish_turn(chat, session_id, client_msg_id=None)
        for name, content, expected in steps:
            await chat.message(content, session_id=session_id, client_msg_id=f"{name}-{n}")
            final = await finish_turn(chat, session_id, client_msg_id=f"{name}-{n}")
            assert final["type"] == expected, f"the {name} turn ended with {final}"
        await chat.send({"type": "message", "session_id": "not-a-uuid", "content": "x", "client_msg_id": f"bad-{n}"})
        await chat.expect_error("malformed_frame", client_msg_id=f"bad-{n}")
        await chat.send({"type": "fly", "request_id": f"fly-{n}"})
        await chat.expect_error("unknown_type", request_id=f"fly-{n}")

        tutor = await sockets.open(stack.ws_url(0), token, label=f"obs-tutor-{n}")
        await tutor.send({"type": "start", "topic_id": 7001, "course_id": 70, "request_id": f"start-{n}"})
        topic_session = (await tutor.expect("session", request_id=f"start-{n}"))["session_id"]
        await tutor.expect("reply", 20, session_id=topic_session)
        await tutor.message("eu domino equações", session_id=topic_session, client_msg_id=f"done-{n}")
        completed = await finish_turn(tutor, topic_session, client_msg_id=f"done-{n}")
        assert completed.get("completed") is True, completed

    # REST: a success and two client errors (HTTP metrics by route and status).
    status, _ = stack.api("GET", f"/api/sessions/{session_id}", token=token)
    assert status == 200, status
    assert stack.api("GET", "/api/sessions/not-a-uuid", token=token)[0] == 400
    assert stack.api("POST", "/api/sessions/start", {"topic_id": 424242}, token)[0] == 404


@pytest.fixture(scope="module")
def traffic(stack):
    """One round of load, so that every metric family has samples."""
    run(load_round(stack, 0), timeout=90)
    return stack


# ---------------------------------------------------------------- prometheus.yml


def test_prometheus_yml_passes_promtool_and_scrapes_every_part():
    need("promtool")
    check = obs.promtool("check", "config", str(obs.PROMETHEUS_YML))
    assert check.returncode == 0, f"promtool check config {obs.PROMETHEUS_YML}:\n{check.stdout}{check.stderr}"

    jobs = {job["job_name"]: job for job in obs.load_yaml(obs.PROMETHEUS_YML)["scrape_configs"]}
    assert set(jobs) == {"parley-gateway", "parley-worker", "rabbitmq", "rabbitmq-per-object", "prometheus"}, sorted(jobs)
    assert jobs["parley-gateway"]["static_configs"][0]["targets"] == ["gateway:8081"]  # the internal listener
    # Every replica of `docker compose up --scale worker=N`, found through DNS.
    (worker_sd,) = jobs["parley-worker"]["dns_sd_configs"]
    assert worker_sd["names"] == ["worker"] and worker_sd["type"] == "A" and worker_sd["port"] == 9100, worker_sd
    for job in ("rabbitmq", "rabbitmq-per-object"):
        assert jobs[job]["static_configs"][0]["targets"] == ["rabbitmq:15692"], jobs[job]
    assert jobs["rabbitmq"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["rabbitmq-per-object"]["metrics_path"] == "/metrics/per-object"


# ---------------------------------------------------------------- the dashboard


def test_the_dashboards_are_well_formed_and_use_only_exported_metrics():
    files = obs.dashboard_files()
    assert obs.OVERVIEW_DASHBOARD in files, f"no {obs.OVERVIEW_DASHBOARD}"
    uid = obs.provisioned_datasource_uid()
    used: set[str] = set()
    uids = set()
    for path in files:
        dashboard = obs.load_json(path)
        problems = obs.structural_problems(dashboard, uid)
        assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)
        assert dashboard["uid"] not in uids, f"{path.name} repeats the dashboard uid {dashboard['uid']!r}"
        uids.add(dashboard["uid"])
        variables = obs.dashboard_variables(dashboard)
        for query in obs.panel_queries(dashboard):
            obs.substitute(query.expr, variables)  # no variable the test (or Grafana) would not know
            used |= {obs.family_of(name) for name in obs.parley_names_in(query.expr)}
    overview = obs.load_json(obs.OVERVIEW_DASHBOARD)
    assert overview["title"] == "Parley overview" and overview["uid"] == "parley-overview", (overview["title"], overview["uid"])
    unused = sorted(set(obs.PARLEY_METRICS) - used)
    assert not unused, f"metrics no dashboard panel shows: {unused}"

    # The provisioning points Grafana at these files and this data source.
    source = obs.load_yaml(obs.DATASOURCE_FILE)["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["access"] == "proxy", source
    (provider,) = obs.load_yaml(obs.DASHBOARD_PROVIDER_FILE)["providers"]
    assert provider["type"] == "file" and provider["options"]["path"], provider


@pytest.fixture
def prometheus(stack):
    """A Prometheus of its own, scraping this stack every second with the jobs of
    prometheus.yml; stopped and removed whatever happens."""
    need("prometheus")
    need("promtool")
    rabbitmq = f"127.0.0.1:{obs.rabbitmq_prometheus_port(stack.rabbitmq_dir)}"
    server = obs.Prometheus()
    server.config = obs.local_scrape_config(
        obs.load_yaml(obs.PROMETHEUS_YML),
        {
            "parley-gateway": [f"127.0.0.1:{g.extra['internal_port']}" for g in stack.gateways if g.alive()],
            "parley-worker": [f"127.0.0.1:{w.extra['port']}" for w in stack.live_workers()],
            "rabbitmq": [rabbitmq],
            "rabbitmq-per-object": [rabbitmq],
            "prometheus": [f"127.0.0.1:{server.port}"],
        },
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def test_every_dashboard_query_returns_data_from_a_real_prometheus(stack, prometheus):
    def all_up():
        targets = prometheus.targets()
        return len(targets) >= 5 and all(t["health"] == "up" for t in targets)

    try:
        wait_until(all_up, 20, "every scrape target up in Prometheus", interval=0.25)
    except AssertionError as error:
        raise AssertionError(f"{error}:\n" + "\n".join(
            f"  {t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in prometheus.targets()
        )) from None

    variables = {}
    queries = []
    for path in obs.dashboard_files():
        dashboard = obs.load_json(path)
        # The queue names of this stack start with its own AMQP prefix.
        variables = {**obs.dashboard_variables(dashboard), "prefix": stack.prefix}
        queries += [(f"{path.name} {q.label}", obs.substitute(q.expr, variables)) for q in obs.panel_queries(dashboard)]
    # Syntax first: Prometheus refuses a malformed query at once.
    for label, expr in queries:
        prometheus.query(expr)

    pending = dict(queries)
    deadline = time.monotonic() + DASHBOARD_DEADLINE
    rounds = 0
    while pending and time.monotonic() < deadline:
        run(load_round(stack, rounds + 1), timeout=90)
        rounds += 1
        poll_until = min(deadline, time.monotonic() + POLL_AFTER_ROUND)
        while pending:
            for label, expr in list(pending.items()):
                if obs.has_data(prometheus.query(expr)):
                    del pending[label]
            if time.monotonic() >= poll_until:
                break
            time.sleep(0.5)
    assert not pending, (
        f"after {rounds} round(s) of load in {DASHBOARD_DEADLINE:.0f} s, these dashboard queries still return no "
        "series with a value:\n  " + "\n  ".join(f"{label}: {expr}" for label, expr in pending.items())
        + "\nscrape targets:\n  " + "\n  ".join(
            f"{t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in prometheus.targets())
    )


# ---------------------------------------------------------------- /metrics


def test_the_public_port_tells_only_ok_and_the_internal_listener_the_details(stack):
    status, body = e2e.http_get(stack.http_url(0) + "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}, body
    assert e2e.http_get(stack.http_url(0) + "/metrics")[0] == 404
    status, body = e2e.http_get(stack.internal_url(0) + "/health")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok", body
    assert set(report["checks"]) == {"database", "broker_publish", "broker_replies"}, report
    status, text = e2e.http_get(stack.internal_url(0) + "/metrics")
    assert status == 200 and "parley_" in text
    # The internal listener serves nothing else.
    assert e2e.http_get(stack.internal_url(0) + "/openapi.json")[0] == 404


def test_metrics_endpoints_pass_promtool_check_metrics(traffic):
    need("promtool")
    stack = traffic
    endpoints = {f"gateway {g.extra['id']}": f"{stack.internal_url(i)}/metrics" for i, g in enumerate(stack.gateways) if g.alive()}
    endpoints |= {f"worker {w.extra['id']}": f"http://127.0.0.1:{w.extra['port']}/metrics" for w in stack.live_workers()}

    def scrape() -> dict[str, str]:
        texts = {}
        for name, url in endpoints.items():
            status, text = e2e.http_get(url)
            assert status == 200, f"GET {url} ({name}) answered {status}"
            texts[name] = text
        return texts

    def every_family_has_samples():
        texts = scrape()
        seen = set().union(*(obs.families_with_samples(text) for text in texts.values()))
        return texts if set(obs.PARLEY_METRICS) <= seen else None

    try:
        texts = wait_until(every_family_has_samples, 20, "samples of every metric family", interval=0.5)
    except AssertionError:
        texts = scrape()
        seen = set().union(*(obs.families_with_samples(text) for text in texts.values()))
        raise AssertionError(f"families without samples after the load: {sorted(set(obs.PARLEY_METRICS) - seen)}") from None

    for name, text in texts.items():
        lint = obs.promtool("check", "metrics", stdin=text)
        assert lint.returncode == 0, f"promtool check metrics on {name}'s /metrics:\n{lint.stdout}{lint.stderr}"
        families = obs.metric_families(text)
        for family, kind in families.items():
            if family.startswith("parley_"):
                assert obs.PARLEY_METRICS.get(family) == kind, (
                    f"{name} exports {family} ({kind}), which is not in observability.PARLEY_METRICS with that type")
        # No unbounded label values: never a session, turn or user id (the suite's
        # users are named like "observer-1a2b3c4d").
        for line in text.splitlines():
            if line.startswith("parley_") and (UUID.search(line) or UNIQUE_NAME.search(line)):
                raise AssertionError(f"{name} exports a series labelled with an id: {line}")


# ---------------------------------------------------------------- compose


def test_compose_yaml_matches_the_compose_specification():
    probe = subprocess.run([sys.executable, "-c", "import check_jsonschema"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("check-jsonschema (PyPI) is not installed; it carries the compose-spec JSON schema: "
                    "python3 -m pip install check-jsonschema")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(obs.COMPOSE_FILE)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"compose.yaml does not match the compose specification:\n{result.stdout}{result.stderr}"


def test_compose_yaml_is_consistent_with_the_repository():
    compose = obs.load_yaml(obs.COMPOSE_FILE)
    services = compose["services"]
    problems: list[str] = []
    missing = SERVICES - set(services)
    if missing:
        problems.append(f"services missing: {sorted(missing)}")
    products = obs.executable_products()

    for name, service in services.items():
        for dependency, condition in obs.depends_on(service).items():
            if dependency not in services:
                problems.append(f"{name} depends on {dependency}, which is no service")
                continue
            if condition == "service_healthy" and not services[dependency].get("healthcheck"):
                problems.append(f"{name} waits for {dependency} to be healthy, which has no healthcheck")
            if condition == "service_completed_successfully" and dependency not in ONE_SHOT:
                problems.append(f"{name} waits for {dependency} to complete, which is no one-shot service")
        if name in ONE_SHOT:
            if str(service.get("restart", "no")) != "no":
                problems.append(f"{name} is a one-shot step and must not restart (restart: {service.get('restart')!r})")
        elif not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{name} has no healthcheck")
        for source in obs.bind_sources(service):
            if not (obs.REPO_ROOT / source).resolve().exists():
                problems.append(f"{name} mounts {source}, which is not in the repository")
        if name in PARLEY_SERVICES:
            if (service.get("build") or {}).get("context") != ".":
                problems.append(f"{name} is not built from the repository's Dockerfile")
            command = service.get("command") or []
            if not command or command[0] not in products:
                problems.append(f"{name} runs {command!r}, not one of the products of Package.swift {sorted(products)}")
            env_files = service.get("env_file") or []
            if not any(isinstance(f, dict) and f.get("path") == ".env" and f.get("required") is False for f in env_files):
                problems.append(f"{name} does not read the optional .env (env_file: [{{path: .env, required: false}}])")

    # Start-up order: migrations before gateway and workers, the broker and database first.
    for name in ("gateway", "worker"):
        needs = obs.depends_on(services.get(name, {}))
        if needs.get("migrate") != "service_completed_successfully":
            problems.append(f"{name} does not wait for the migrations (migrate: service_completed_successfully)")
        for server in ("rabbitmq", "postgres"):
            if needs.get(server) != "service_healthy":
                problems.append(f"{name} does not wait for {server} to be healthy")
    if services.get("migrate", {}).get("command") != ["parley-worker", "migrate"]:
        problems.append(f"migrate runs {services.get('migrate', {}).get('command')!r}, not parley-worker migrate")

    # Scalable workers: replicas, no fixed host port or container name.
    worker = services.get("worker", {})
    replicas = (worker.get("deploy") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 2:
        problems.append(f"worker has {replicas!r} replicas (3 by default, scaled with --scale worker=N)")
    for key in ("ports", "container_name"):
        if key in worker:
            problems.append(f"worker sets {key}, which breaks --scale worker=N")

    # The ports prometheus.yml scrapes are the ones the processes listen on.
    worker_env = obs.environment_of(worker)
    gateway_env = obs.environment_of(services.get("gateway", {}))
    if worker_env.get("WORKER_PORT") != "9100" or worker_env.get("WORKER_HOST") != "0.0.0.0":
        problems.append(f"workers listen on {worker_env.get('WORKER_HOST')}:{worker_env.get('WORKER_PORT')}, "
                        "prometheus.yml scrapes worker:9100 (0.0.0.0:9100 needed)")
    if gateway_env.get("GATEWAY_PORT") != "8080" or gateway_env.get("GATEWAY_HOST") != "0.0.0.0":
        problems.append(f"the gateway listens on {gateway_env.get('GATEWAY_HOST')}:{gateway_env.get('GATEWAY_PORT')}, "
                        "its published port is 8080 (0.0.0.0:8080 needed)")
    if gateway_env.get("GATEWAY_INTERNAL_PORT") != "8081" or gateway_env.get("GATEWAY_INTERNAL_HOST") != "0.0.0.0":
        problems.append(f"the gateway's internal listener is {gateway_env.get('GATEWAY_INTERNAL_HOST')}:{gateway_env.get('GATEWAY_INTERNAL_PORT')}, "
                        "prometheus.yml scrapes gateway:8081 (0.0.0.0:8081 needed)")
    published = [str(p) for p in services.get("gateway", {}).get("ports", [])]
    if any("8081" in p for p in published):
        problems.append(f"the gateway publishes its internal listener ({published}): metrics and health details stay inside the network")
    # Without a provider key, the workers talk to the simulator of this file.
    sim_port = obs.environment_of(services.get("llm-sim", {})).get("LLM_SIM_PORT")
    if obs.interpolate_defaults(worker_env.get("OPENAI_BASE_URL", "")) != f"http://llm-sim:{sim_port}/v1":
        problems.append(f"the workers' default OPENAI_BASE_URL {worker_env.get('OPENAI_BASE_URL')!r} is not the simulator")
    if not obs.interpolate_defaults(worker_env.get("OPENAI_API_KEY", "")):
        problems.append("the workers have no default OPENAI_API_KEY for the simulator")
    topics = obs.interpolate_defaults(worker_env.get("TOPICS_FILE", ""))
    if not topics.startswith("/app/config/") or not (obs.REPO_ROOT / "config" / topics.removeprefix("/app/config/")).is_file():
        problems.append(f"TOPICS_FILE {topics!r} is not a file of config/ as the image holds it (/app/config)")

    # Prometheus reads this repository's prometheus.yml; Grafana its provisioning and dashboards.
    prometheus_mounts = [v for v in services.get("prometheus", {}).get("volumes", []) if isinstance(v, str)]
    if not any(v.startswith("./prometheus.yml:/etc/prometheus/prometheus.yml") for v in prometheus_mounts):
        problems.append(f"prometheus does not mount ./prometheus.yml at /etc/prometheus/prometheus.yml: {prometheus_mounts}")
    grafana = services.get("grafana", {})
    grafana_mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana.get("volumes", []) if isinstance(v, str)}
    if grafana_mounts.get("./grafana/provisioning") != "/etc/grafana/provisioning":
        problems.append("grafana does not mount ./grafana/provisioning at /etc/grafana/provisioning")
    (provider,) = obs.load_yaml(obs.DASHBOARD_PROVIDER_FILE)["providers"]
    if grafana_mounts.get("./grafana/dashboards") != provider["options"]["path"]:
        problems.append(f"the dashboard provider reads {provider['options']['path']}, "
                        f"but ./grafana/dashboards is mounted at {grafana_mounts.get('./grafana/dashboards')}")
    grafana_env = obs.environment_of(grafana)
    if grafana_env.get("GF_AUTH_ANONYMOUS_ENABLED") != "true" or grafana_env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer":
        problems.append("grafana does not allow anonymous read-only (Viewer) access")
    home = grafana_env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    if not home.startswith(provider["options"]["path"] + "/") or not (
            obs.DASHBOARD_DIR / home.removeprefix(provider["options"]["path"] + "/")).is_file():
        problems.append(f"the home dashboard {home!r} is not one of grafana/dashboards")
    source_url = obs.load_yaml(obs.DATASOURCE_FILE)["datasources"][0]["url"]
    if source_url != "http://prometheus:9090" or "prometheus" not in services:
        problems.append(f"the provisioned data source {source_url} is not the prometheus service")

    # Secrets and knobs: every variable compose reads is documented in .env.example,
    # and .env itself is never committed.
    undocumented = sorted(obs.compose_variables(obs.COMPOSE_FILE.read_text()) - obs.env_example_names())
    if undocumented:
        problems.append(f"variables compose.yaml reads that .env.example does not list: {undocumented}")
    ignored = subprocess.run(["git", "-C", str(obs.REPO_ROOT), "check-ignore", "-q", ".env"], capture_output=True)
    if ignored.returncode == 1:
        problems.append(".env is not ignored by git")

    assert not problems, "compose.yaml:\n  " + "\n  ".join(problems)


NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def test_the_readme_describes_the_compose_file():
    section = obs.readme_docker_section()
    assert section, "README.md has no '## With Docker' section"
    compose = obs.load_yaml(obs.COMPOSE_FILE)
    services = compose["services"]
    problems = []
    for command in re.findall(r"docker compose [^`\n]*", section):
        words = command.split()[2:]
        for scale in re.findall(r"--scale[ =]([\w-]+)=", command):
            if scale not in services:
                problems.append(f"`{command}` scales {scale!r}, which is no service")
        if words and words[0] in {"logs", "restart", "stop", "start", "exec", "run", "ps", "build", "pull"}:
            for word in words[1:]:
                if not word.startswith("-") and "=" not in word and not word.isdigit() and word not in services:
                    problems.append(f"`{command}` names {word!r}, which is no service")
                    break
    published = {obs.interpolate_defaults(port) for service in services.values() for port in obs.host_ports(service)}
    for port in re.findall(r"\((?:port )?(\d{4,5})\)", section):
        if port not in published:
            problems.append(f"the README mentions port {port}, which compose.yaml does not publish ({sorted(published)})")
    match = re.search(r"\b(one|two|three|four|five) workers\b", section)
    replicas = (services.get("worker", {}).get("deploy") or {}).get("replicas")
    if match and NUMBER_WORDS[match.group(1)] != replicas:
        problems.append(f"the README says {match.group(0)}, compose.yaml starts {replicas}")
    assert not problems, "README.md, section 'With Docker':\n  " + "\n  ".join(problems)


def test_turns_are_counted_by_the_channel_they_came_through(stack):
    """The suite has sent turns over WebSocket (no Origin), REST, gRPC and WhatsApp by
    now (this module runs late): each is a `channel` of the gateways' turn counter, and
    the dashboard's "Turns by channel" panel reads them."""
    channels: set[str] = set()
    for index, gateway in enumerate(stack.gateways):
        if not gateway.alive():
            continue
        status, text = e2e.http_get(stack.internal_url(index) + "/metrics")
        assert status == 200
        channels |= set(re.findall(r'parley_gateway_turns_published_total\{[^}]*channel="(\w+)"[^}]*outcome="confirmed"', text))
        channels |= set(re.findall(r'parley_gateway_turns_published_total\{[^}]*outcome="confirmed"[^}]*channel="(\w+)"', text))
    assert {"websocket", "rest", "grpc", "whatsapp"} <= channels, channels
    assert channels <= {"web", "websocket", "rest", "grpc", "whatsapp"}, channels
