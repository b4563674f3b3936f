"""`nudge report`: each rule's lift over its holdout, from the events the Worker writes.

sources.py reads the events (local or remote), stats.py holds the statistics, lift.py attributes
conversions and measures each rule (its docstring states the method), text.py and html.py write it.
"""
