#!/usr/bin/env bash
# Runs the demo shop (origin) and the local edge runtime together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
SHOP_PORT=${SHOP_PORT:-8788}
# Follow-ups (cart/browse abandonment) go to the shop's own webhook receiver, listed at /webhooks.
WEBHOOK_SECRET=${NUDGE_WEBHOOK_SECRET:-local-dev-webhook-secret}
NUDGE_WEBHOOK_SECRET=$WEBHOOK_SECRET .venv/bin/python -m demo_shop --port "$SHOP_PORT" &
shop=$!
node local-edge/server.mjs --port "$PORT" --var "ORIGIN_URL:http://127.0.0.1:$SHOP_PORT" \
  --var "NUDGE_WEBHOOK_URL:http://127.0.0.1:$SHOP_PORT/webhooks/nudge" --var "NUDGE_WEBHOOK_SECRET:$WEBHOOK_SECRET" &
edge=$!
trap 'kill $shop $edge 2>/dev/null; wait 2>/dev/null' INT TERM EXIT
echo "nudge: shop at http://127.0.0.1:$SHOP_PORT, personalized through the edge at http://127.0.0.1:$PORT"
echo "nudge: follow-ups received: http://127.0.0.1:$PORT/webhooks (advance the queue clock:" \
     "curl -X POST 'http://127.0.0.1:$PORT/__local-edge/queues/advance?seconds=900')"
wait -n $shop $edge
