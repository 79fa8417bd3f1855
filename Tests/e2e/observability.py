"""Helpers of the observability checks (test_zx_observability.py): the metric names
Parley exports, the Grafana dashboard's queries, a throwaway Prometheus that scrapes
the end-to-end stack, and the compose file's structure.

Nothing here talks to the Parley processes by itself; the test module drives them.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

try:
    import yaml
except ImportError as error:  # pragma: no cover - reported at collection
    raise ImportError(
        "the observability checks read YAML with PyYAML: python3 -m pip install pyyaml"
    ) from error

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = REPO_ROOT / "prometheus.yml"
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
README = REPO_ROOT / "README.md"
DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
DATASOURCE_FILE = REPO_ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDER_FILE = REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "parley.yaml"
OVERVIEW_DASHBOARD = DASHBOARD_DIR / "parley-overview.json"

# ---------------------------------------------------------------- the metrics

# Every metric family Parley exports (Sources/Shared/Observability/ParleyMetrics.swift),
# with its type. Labels take values from small fixed sets only.
PARLEY_METRICS: dict[str, str] = {
    # gateway
    "parley_gateway_ws_connections": "gauge",
    "parley_gateway_ws_connects_total": "counter",
    "parley_gateway_frames_received_total": "counter",  # type
    "parley_gateway_frames_rejected_total": "counter",  # reason
    "parley_gateway_turns_published_total": "counter",  # outcome
    "parley_gateway_replies_delivered_total": "counter",  # kind
    "parley_gateway_turn_errors_total": "counter",  # code
    "parley_gateway_turn_latency_seconds": "histogram",
    "parley_gateway_time_to_first_delta_seconds": "histogram",
    "parley_whatsapp_messages_total": "counter",  # kind, outcome
    "parley_whatsapp_replies_total": "counter",  # outcome
    "parley_whatsapp_statuses_total": "counter",  # status
    "parley_whatsapp_backlog": "gauge",
    # gateway and workers
    "parley_http_requests_total": "counter",  # route, method, status
    "parley_http_request_duration_seconds": "histogram",  # route, method
    # workers
    "parley_worker_turns_total": "counter",  # outcome
    "parley_worker_turns_in_flight": "gauge",
    "parley_worker_turn_duration_seconds": "histogram",
    "parley_llm_request_duration_seconds": "histogram",  # provider, model, outcome
    "parley_llm_time_to_first_token_seconds": "histogram",  # provider, model
    "parley_llm_tokens_total": "counter",  # provider, model, kind
    "parley_llm_retries_total": "counter",  # provider, model
    "parley_llm_fallbacks_total": "counter",  # from, to
    "parley_llm_errors_total": "counter",  # provider, code
    "parley_topic_completions_total": "counter",
    "parley_outbox_backlog": "gauge",
    "parley_outbox_delivery_attempts_total": "counter",  # outcome
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_PARLEY_NAME = re.compile(r"\bparley_[A-Za-z0-9_]+")


def family_of(series_name: str) -> str | None:
    """The exported family a series name belongs to (`…_seconds_bucket` → `…_seconds`)."""
    if PARLEY_METRICS.get(series_name):
        return series_name
    for suffix in HISTOGRAM_SUFFIXES:
        if series_name.endswith(suffix):
            base = series_name[: -len(suffix)]
            if PARLEY_METRICS.get(base) == "histogram":
                return base
    return None


def parley_names_in(expr: str) -> set[str]:
    return set(_PARLEY_NAME.findall(expr))


def metric_families(text: str) -> dict[str, str]:
    """Family name → type, from the `# TYPE` lines of a Prometheus text exposition."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                families[parts[2]] = parts[3]
    return families


def families_with_samples(text: str) -> set[str]:
    """Families (by `# TYPE` name) that have at least one sample line."""
    declared = metric_families(text)
    seen = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{\s]", line, maxsplit=1)[0]
        if name in declared:
            seen.add(name)
            continue
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in declared:
                seen.add(name[: -len(suffix)])
    return seen


def promtool(*arguments: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    executable = shutil.which("promtool")
    if executable is None:
        raise FileNotFoundError("promtool")
    return subprocess.run(
        [executable, *arguments], input=stdin, capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------- the dashboard

# What Grafana puts in for its built-in variables when the test evaluates a query:
# $__rate_interval is at least four scrape intervals (1 s here) and covers a short load.
GRAFANA_BUILTINS = {
    "__rate_interval": "30s",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass
class PanelQuery:
    panel_id: int
    title: str
    ref_id: str
    expr: str
    instant: bool

    @property
    def label(self) -> str:
        return f"panel {self.panel_id} {self.title!r} query {self.ref_id}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file)


def provisioned_datasource_uid() -> str:
    document = load_yaml(DATASOURCE_FILE)
    sources = [s for s in document.get("datasources", []) if s.get("type") == "prometheus"]
    assert len(sources) == 1, f"{DATASOURCE_FILE} should provision exactly one Prometheus data source: {sources}"
    uid = sources[0].get("uid")
    assert uid, f"the data source in {DATASOURCE_FILE} has no fixed uid"
    return uid


def all_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, rows and the panels inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", []) or []


def panel_queries(dashboard: dict) -> list[PanelQuery]:
    queries = []
    for panel in all_panels(dashboard):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []) or []:
            if target.get("hide"):
                continue
            queries.append(
                PanelQuery(panel.get("id"), panel.get("title", ""), target.get("refId", "?"), target.get("expr", ""),
                           bool(target.get("instant")))
            )
    return queries


def dashboard_variables(dashboard: dict) -> dict[str, str]:
    """The dashboard's template variables with their default values."""
    values = {}
    for variable in (dashboard.get("templating") or {}).get("list", []):
        current = variable.get("current") or {}
        value = current.get("value", variable.get("query", ""))
        if isinstance(value, list):
            value = value[0] if value else ""
        values[variable["name"]] = str(value)
    return values


def substitute(expr: str, variables: dict[str, str]) -> str:
    """The query Grafana would send: builtins and template variables filled in.
    An unknown variable is an error (the test would not know what Grafana sends)."""
    known = {**GRAFANA_BUILTINS, **variables}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in known:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return known[name]

    return _VARIABLE.sub(replace, expr)


def structural_problems(dashboard: dict, datasource_uid: str) -> list[str]:
    """What is wrong with a dashboard's structure (empty when nothing is)."""
    problems: list[str] = []
    for key in ("uid", "title", "schemaVersion", "panels"):
        if not dashboard.get(key):
            problems.append(f"the dashboard has no {key!r}")
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard.get("schemaVersion", 0) < 36:
        problems.append(f"schemaVersion {dashboard.get('schemaVersion')!r} is not that of a Grafana 10/11 dashboard (>= 36)")

    ids: dict[Any, str] = {}
    boxes: list[tuple[str, int, int, int, int]] = []
    for panel in all_panels(dashboard):
        title = panel.get("title", "")
        pid = panel.get("id")
        name = f"panel {pid} {title!r}"
        if not isinstance(pid, int):
            problems.append(f"{name} has no integer id")
        elif pid in ids:
            problems.append(f"{name} has the same id as {ids[pid]}")
        else:
            ids[pid] = name
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{name} has no complete gridPos (h, w, x, y): {grid}")
        else:
            if grid["x"] < 0 or grid["w"] <= 0 or grid["x"] + grid["w"] > 24 or grid["h"] <= 0 or grid["y"] < 0:
                problems.append(f"{name} lies outside the 24-column grid: {grid}")
            boxes.append((name, grid["x"], grid["y"], grid["w"], grid["h"]))
        if panel.get("type") == "row":
            continue
        if not title:
            problems.append(f"{name} has no title")
        source = panel.get("datasource") or {}
        if source.get("uid") != datasource_uid:
            problems.append(f"{name}: datasource {source} is not the provisioned uid {datasource_uid!r}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{name} has no queries")
        refs = set()
        for target in targets:
            ref = target.get("refId")
            if not ref or ref in refs:
                problems.append(f"{name}: missing or repeated refId {ref!r}")
            refs.add(ref)
            if not (target.get("expr") or "").strip():
                problems.append(f"{name} query {ref}: no expr")
            target_source = target.get("datasource")
            if target_source is not None and target_source.get("uid") != datasource_uid:
                problems.append(f"{name} query {ref}: datasource {target_source} is not {datasource_uid!r}")
            for metric in parley_names_in(target.get("expr") or ""):
                if family_of(metric) is None:
                    problems.append(f"{name} query {ref}: {metric} is not a metric Parley exports")
    # Overlapping panels render on top of each other.
    for i, (name_a, xa, ya, wa, ha) in enumerate(boxes):
        for name_b, xb, yb, wb, hb in boxes[i + 1:]:
            if xa < xb + wb and xb < xa + wa and ya < yb + hb and yb < ya + ha:
                problems.append(f"{name_a} overlaps {name_b}")
    return problems


# ---------------------------------------------------------------- Prometheus


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_scrape_config(repo_config: dict, targets: dict[str, list[str]], interval: str = "2s") -> dict:
    """prometheus.yml with its jobs (names, paths) kept and their targets replaced by
    local ones: `targets` maps every job name of prometheus.yml to HOST:PORT strings."""
    jobs = [job["job_name"] for job in repo_config.get("scrape_configs", [])]
    unknown = sorted(set(jobs) - set(targets))
    assert not unknown, f"prometheus.yml has jobs the test cannot place locally: {unknown} (known: {sorted(targets)})"
    config: dict[str, Any] = {
        # The timeout is the whole interval: RabbitMQ's per-object page of a node that
        # has seen many tests' queues can take more than a second.
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [],
    }
    for job in repo_config["scrape_configs"]:
        local = {k: v for k, v in job.items() if k not in {
            "static_configs", "dns_sd_configs", "file_sd_configs", "scrape_interval", "scrape_timeout"}}
        local["static_configs"] = [{"targets": targets[job["job_name"]]}]
        config["scrape_configs"].append(local)
    return config


class Prometheus:
    """A Prometheus server of its own (binary from PATH) in a temporary directory."""

    def __init__(self, config: dict | None = None) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise FileNotFoundError("prometheus")
        self.dir = Path(tempfile.mkdtemp(prefix="parley-prometheus-"))
        self.port = free_port()
        self.config_path = self.dir / "prometheus.yml"
        self.log_path = self.dir / "prometheus.log"
        # Set before start(); the port is known first so the config can name it.
        self.config = config or {}
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Prometheus":
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        check = promtool("check", "config", str(self.config_path))
        assert check.returncode == 0, f"promtool check config failed for the generated config:\n{check.stdout}{check.stderr}"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self._get("/-/ready")[0] != 200:
            if self.popen.poll() is not None:
                raise AssertionError(f"prometheus exited with status {self.popen.returncode}:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"prometheus was not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + path, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except OSError:
            return 0, ""

    def targets(self) -> list[dict]:
        status, body = self._get("/api/v1/targets?state=active")
        assert status == 200, f"GET /api/v1/targets answered {status}: {body[:300]}"
        return json.loads(body)["data"]["activeTargets"]

    def query(self, expr: str) -> list[dict]:
        """The result of an instant query; a query Prometheus refuses is an AssertionError."""
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if status != 200:
            try:
                detail = json.loads(body).get("error", body)
            except json.JSONDecodeError:
                detail = body
            raise AssertionError(f"Prometheus refused {expr!r} ({status}): {detail}")
        data = json.loads(body)["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]


def has_data(result: list[dict]) -> bool:
    """At least one series with a number (histogram_quantile of no traffic is NaN)."""
    for series in result:
        value = series.get("value")
        if value is None:
            continue
        try:
            number = float(value[1])
        except (TypeError, ValueError):
            continue
        if not math.isnan(number):
            return True
    return False


def rabbitmq_prometheus_port(rabbitmq_dir: str) -> int:
    """The port of the test node's Prometheus plugin (rabbitmq.conf, written by rabbitmq.sh)."""
    text = (Path(rabbitmq_dir) / "rabbitmq.conf").read_text()
    match = re.search(r"^prometheus\.tcp\.port\s*=\s*(\d+)", text, re.M)
    assert match, f"no prometheus.tcp.port in {rabbitmq_dir}/rabbitmq.conf"
    return int(match.group(1))


# ---------------------------------------------------------------- compose

_COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)|(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


def compose_variables(text: str) -> set[str]:
    """Variables compose interpolates (`$$` escapes a dollar for the container)."""
    return {a or b for a, b in _COMPOSE_VARIABLE.findall(text)}


def env_example_names() -> set[str]:
    """Names .env.example lists, set (`NAME=`) or shown with their default (`# NAME=`)."""
    return set(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def depends_on(service: dict) -> dict[str, str]:
    """A service's dependencies → condition (the short list form means service_started)."""
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return {name: "service_started" for name in value}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def bind_sources(service: dict) -> list[str]:
    """Host paths of a service's bind mounts (short `./a:/b:ro` and long syntax)."""
    sources = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
        else:
            source = volume.get("source", "") if volume.get("type", "bind") == "bind" else ""
        if source.startswith((".", "/")):
            sources.append(source)
    return sources


def readme_docker_section() -> str:
    text = README.read_text()
    match = re.search(r"^## With Docker\n(.*?)(?=^## )", text, re.M | re.S)
    return match.group(1) if match else ""


def executable_products() -> set[str]:
    """Executable products of Package.swift (read as text, not built)."""
    return set(re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', (REPO_ROOT / "Package.swift").read_text()))


def environment_of(service: dict) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {k: "" if v is None else str(v) for k, v in value.items()}


def host_ports(service: dict) -> list[str]:
    """Published host ports of a service (`[ip:]host:container` or long syntax), with
    compose's defaults put in for variables."""
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                ports.append(str(entry["published"]))
            continue
        parts = interpolate_defaults(str(entry)).split(":")
        if len(parts) >= 2:
            ports.append(parts[-2])
    return ports


def interpolate_defaults(value: str) -> str:
    """`${VAR:-default}` → default, `${VAR}` → '' (what compose gives with no .env)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)
