"""nudge: behavior-driven onsite personalization at the edge.

Everything in this package is plain Python except `nudge.edge`, the one module that talks to the
Workers runtime (`js`, `pyodide`, `workers`).
"""
