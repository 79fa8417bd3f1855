#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Lists and requeues dead-lettered turns: the messages of <prefix>.dead, where a worker
# puts a turn it cannot decode, or one that failed on its last allowed delivery.
#
#   bash scripts/dead-letters.sh list                     what is there (id, type, why, body)
#   bash scripts/dead-letters.sh list --json
#   bash scripts/dead-letters.sh requeue                  every turn envelope back to <prefix>.turns
#   bash scripts/dead-letters.sh requeue --id MESSAGE_ID  only these (repeat --id)
#   bash scripts/dead-letters.sh requeue --include-invalid   undecodable ones too
#   bash scripts/dead-letters.sh discard --id MESSAGE_ID  remove a message for good
#
# Options: --prefix P (default $AMQP_PREFIX or parley), --url AMQP_URL (default $AMQP_URL
# or amqp://guest:guest@127.0.0.1:5672/%2f). A requeued message keeps its message id,
# type and body (a turn's turn_id: workers answer a turn once, whatever the copies), is
# published with a publisher confirm, and only then removed from the dead-letter queue;
# its header x-parley-requeued counts how often that was done.
# Needs the Python package pika (installed with pip when missing).
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/deps.sh
source "$SCRIPTS_DIR/lib/deps.sh"

ensure_python_pika
exec python3 "$SCRIPTS_DIR/lib/dead_letters.py" "$@"
