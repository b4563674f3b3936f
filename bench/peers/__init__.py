"""bench/peers: nudge side by side with a pass-through Python Worker, GrowthBook's edge app and the
origin itself, on workerd (`wrangler dev`), alternated request by request (run.py)."""
