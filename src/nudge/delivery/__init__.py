"""How a decision reaches the page: HTML snippets, CSP, and what may be cached or rewritten."""
