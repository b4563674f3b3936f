"""nudge's offline tooling (the `nudge` CLI, reports, simulation): never uploaded to Cloudflare."""
