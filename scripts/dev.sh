#!/usr/bin/env bash
# make dev: nudge on Cloudflare's runtime (workerd, through `wrangler dev`, offline) in front of the
# demo shop; with ORIGIN_URL set, in front of that origin alone. Every NUDGE_* variable in the
# environment (make dev NUDGE_EXPLAIN_TOKEN=...) becomes a Worker var. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
SHOP_PORT=${SHOP_PORT:-8788}
export PATH="$PWD/node_modules/.bin:$PATH" MINIFLARE_WORKERD_PATH="$PWD/scripts/workerd" \
  WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false X_LOCAL_OBSERVABILITY=false
# Local only: echo Analytics Engine points (workerd's local dataset keeps nothing) for `nudge report`,
# and let a follow-up's queue delay be at most a minute (Queues wait in real time).
export NUDGE_LOCAL_EVENTS=${NUDGE_LOCAL_EVENTS:-log} NUDGE_LOCAL_QUEUE_DELAY_CAP=${NUDGE_LOCAL_QUEUE_DELAY_CAP:-60}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' INT TERM EXIT
if [ -z "${ORIGIN_URL:-}" ]; then
  # Follow-ups (cart/browse abandonment) go to the shop's own webhook receiver, listed at /webhooks.
  export NUDGE_WEBHOOK_SECRET=${NUDGE_WEBHOOK_SECRET:-local-dev-webhook-secret}
  export NUDGE_WEBHOOK_URL=${NUDGE_WEBHOOK_URL:-http://127.0.0.1:$SHOP_PORT/webhooks/nudge}
  .venv/bin/python -m demo_shop --port "$SHOP_PORT" &
  pids+=($!)
  ORIGIN_URL=http://127.0.0.1:$SHOP_PORT
  echo "nudge: demo shop at $ORIGIN_URL; follow-ups it received: http://127.0.0.1:$PORT/webhooks"
fi
vars=(--var "ORIGIN_URL:$ORIGIN_URL")
while IFS='=' read -r name value; do
  case $name in NUDGE_REAL_WORKERD|NUDGE_PYODIDE_CACHE) ;; NUDGE_*) vars+=(--var "$name:$value") ;; esac
done < <(env)
mkdir -p .nudge-local/analytics
echo "nudge: $ORIGIN_URL personalized through the edge at http://127.0.0.1:$PORT (workerd)"
wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to .nudge-local --show-interactive-dev-session=false \
  --compatibility-flags python_workers --compatibility-flags python_workers_development "${vars[@]}" \
  > >(.venv/bin/python scripts/local_events.py .nudge-local/analytics/nudge_events.jsonl) 2>&1 &
pids+=($!)
wait -n "${pids[@]}"
