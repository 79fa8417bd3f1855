#!/usr/bin/env bash
# Installs what the scripts and the Swift build need, and only what is missing, so a
# second run costs a few dpkg look-ups and no network.
#
# Meant to be sourced by scripts that run under `set -euo pipefail`.

[[ -n "${_PARLEY_DEPS_SH:-}" ]] && return 0
_PARLEY_DEPS_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Debian packages:
#   rabbitmq-server       the broker (apt starts no service here: the scripts start it)
#   librabbitmq-dev       rabbitmq-c 0.11, linked by the CRabbitMQ system-library target
#   libpq-dev             PostgreSQL client headers
#   libcurl4-openssl-dev  libcurl for Foundation's networking on Linux
#   postgresql            server binaries under /usr/lib/postgresql/<version>/bin, psql
#   curl                  health checks
#   prometheus            scrapes the local system (run.sh) and checks the dashboards
#                         (the end-to-end suite); with promtool. --no-install-recommends
#                         (below) leaves out prometheus-node-exporter.
# python3 itself comes with the machine (pyenv's CPython); python3-venv is not needed
# because `websockets` is installed into that interpreter with pip.
PARLEY_SYSTEM_PACKAGES=(
    rabbitmq-server
    librabbitmq-dev
    libpq-dev
    libcurl4-openssl-dev
    postgresql
    curl
    prometheus
)

# ensure_system_packages — apt-get install the packages above that dpkg lacks.
ensure_system_packages() {
    local missing=() pkg
    for pkg in "${PARLEY_SYSTEM_PACKAGES[@]}"; do
        # `dpkg -s` also succeeds for a package that was removed but left its
        # configuration behind, so look at the status line itself.
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them with apt-get"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "installed: ${missing[*]}"
}

# ensure_python_websockets — make `import websockets` work for python3 (the
# end-to-end suite uses it as its WebSocket client).
ensure_python_websockets() {
    if python3 -c 'import websockets' 2>/dev/null; then
        return 0
    fi
    log "installing the Python package websockets with $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore websockets
    python3 -c 'import websockets' || die "websockets is still not importable by python3 after pip install"
    log "installed: websockets $(python3 -c 'import websockets; print(websockets.__version__)')"
}

# ensure_python_pika — the AMQP client of scripts/dead-letters.sh and of R7.
ensure_python_pika() {
    if python3 -c 'import pika' 2>/dev/null; then
        return 0
    fi
    log "installing the Python package pika with $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pika
    python3 -c 'import pika' || die "pika is still not importable by python3 after pip install"
}
