#!/usr/bin/env bash
# Runs the demo shop (origin) and the local edge runtime together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8787}
SHOP_PORT=${SHOP_PORT:-8788}
.venv/bin/python -m demo_shop --port "$SHOP_PORT" &
shop=$!
node local-edge/server.mjs --port "$PORT" --var "ORIGIN_URL:http://127.0.0.1:$SHOP_PORT" &
edge=$!
trap 'kill $shop $edge 2>/dev/null; wait 2>/dev/null' INT TERM EXIT
echo "nudge: shop at http://127.0.0.1:$SHOP_PORT, personalized through the edge at http://127.0.0.1:$PORT"
wait -n $shop $edge
