"""Demo shop: the origin behind nudge's edge Worker in `make dev` and the e2e tests."""
