"""nudge's offline tooling (the `nudge` CLI, reports, simulation, and the origin, processes and traffic
that tests and benchmarks share): never uploaded to Cloudflare."""
