"""The one boundary with the Workers runtime (js, pyodide, workers): glue, no decisions."""
