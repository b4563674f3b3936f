"""What an isolate remembers between requests that nudge's decisions read: the offers whose daily
budget ran out today (budgets.py) and the product facts learned from the shop's pages
(visitor/learned_catalog.py).

The Engine is configuration: built from the Worker's vars and a rule set, and replaced whole when
newly published rules arrive. What the isolate learns while it serves is no configuration and
must outlive that replacement, so it lives here: the runtime keeps one per isolate
(runtime/isolate.py) and hands it to each Engine call that reads or changes it.

One value rather than its parts at the Engine's door: the runtime passes what the isolate
remembers without knowing which room reads which part (a page reads both, a beacon the learned
catalog, a redemption the budgets), so a room that starts reading another part changes no caller;
inside the rooms each step takes only the part it needs. And a test gives each case a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nudge.budgets import SpentBudgets
from nudge.visitor.learned_catalog import LearnedCatalog

__all__ = ["IsolateMemory"]


@dataclass(frozen=True)
class IsolateMemory:
    """The isolate's memory: its parts are fixed, what they hold changes as the isolate serves."""

    budgets: SpentBudgets = field(default_factory=SpentBudgets)
    learned: LearnedCatalog = field(default_factory=LearnedCatalog)
