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
#   pgbouncer             PostgreSQL behind a pooler (transaction mode) in the tests
#                         (scripts/lib/pgbouncer.sh; apt starts no service here)
#   haproxy               the gateways behind a load balancer (fault scenario R9)
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
    pgbouncer
    haproxy
    curl
    prometheus
)

# ensure_system_packages — apt-get install the packages above that dpkg lacks.
ensure_system_packages() { ensure_debian_packages "${PARLEY_SYSTEM_PACKAGES[@]}"; }

# ensure_debian_packages PACKAGE... — apt-get install those of them that dpkg lacks.
ensure_debian_packages() {
    local missing=() pkg
    for pkg in "$@"; do
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

# ensure_python_package MODULE [PIP_NAME] — make `import MODULE` work for python3,
# installing PIP_NAME (default MODULE) from PyPI when it does not.
ensure_python_package() {
    local module=$1 package=${2:-$1}
    if python3 -c "import $module" 2>/dev/null; then
        return 0
    fi
    log "installing the Python package $package with $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$package"
    python3 -c "import $module" || die "$module is still not importable by python3 after pip install $package"
}

# ensure_python_websockets — the WebSocket client of the end-to-end suite.
ensure_python_websockets() { ensure_python_package websockets; }

# ensure_python_pika — the AMQP client of scripts/dead-letters.sh and of R7.
ensure_python_pika() { ensure_python_package pika; }

# ensure_python_cryptography — signs the identity provider's tokens in the end-to-end
# suite (RS256 / ES256).
ensure_python_cryptography() { ensure_python_package cryptography; }

# ensure_python_matplotlib — draws the load tool's and the benchmark's plots.
ensure_python_matplotlib() { ensure_python_package matplotlib; }

# ensure_browser — headless Chromium, its WebDriver and Selenium: the end-to-end suite
# drives the chat page in a real browser (Tests/e2e/test_chat_page.py).
ensure_browser() {
    ensure_debian_packages chromium chromium-driver
    ensure_python_package selenium
}

# ensure_kubernetes_tools — kubectl (its kustomize renders deploy/kubernetes), and from
# PyPI kubernetes-validate (the Kubernetes schemas) and PyYAML, for the manifests' tests.
ensure_kubernetes_tools() {
    command -v kubectl >/dev/null || ensure_debian_packages kubectl
    ensure_python_package yaml pyyaml
    ensure_python_package kubernetes_validate kubernetes-validate
}
