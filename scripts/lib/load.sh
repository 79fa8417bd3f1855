#!/usr/bin/env bash
# Sources every library of scripts/lib (each guards against being sourced twice).
# shellcheck source-path=SCRIPTDIR
_parley_lib="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=common.sh
source "$_parley_lib/common.sh"
# shellcheck source=deps.sh
source "$_parley_lib/deps.sh"
# shellcheck source=tmpfs.sh
source "$_parley_lib/tmpfs.sh"
# shellcheck source=rabbitmq.sh
source "$_parley_lib/rabbitmq.sh"
# shellcheck source=postgres.sh
source "$_parley_lib/postgres.sh"
# shellcheck source=rabbitmq_cluster.sh
source "$_parley_lib/rabbitmq_cluster.sh"
# shellcheck source=pgbouncer.sh
source "$_parley_lib/pgbouncer.sh"
# shellcheck source=throwaway.sh
source "$_parley_lib/throwaway.sh"
# shellcheck source=prometheus.sh
source "$_parley_lib/prometheus.sh"
