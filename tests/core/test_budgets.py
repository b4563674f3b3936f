"""What an isolate remembers of the offers' daily budgets (budgets.py), and what pages make of it."""

from __future__ import annotations

from nudge.budgets import DAY, SpentBudgets
from nudge.isolate_memory import IsolateMemory

from .factories import NOW, PRODUCTS, RULE, make_app, visit

STORY = ["/collections/sneakers", *PRODUCTS]  # the story rule's modal, with its offer


def test_a_budget_is_spent_once_the_days_redemptions_reach_its_limit() -> None:
    budgets = SpentBudgets()
    assert not budgets.record_used("deal", 2, 3, NOW) and budgets.spent_today(NOW) == frozenset()
    assert not budgets.record_used("deal", 5, None, NOW)  # no budget: never spent
    assert budgets.record_used("deal", 3, 3, NOW) and budgets.spent_today(NOW) == {"deal"}
    assert budgets.record_used("other", 4, 3, NOW) and budgets.spent_today(NOW) == {"deal", "other"}


def test_a_spent_budget_is_spent_until_the_utc_day_ends() -> None:
    budgets = SpentBudgets()
    midnight = (NOW // DAY + 1) * DAY
    budgets.mark_spent("deal", midnight - 1)
    assert budgets.spent_today(midnight - 1) == {"deal"} and budgets.spent_today(NOW // DAY * DAY) == {"deal"}
    assert budgets.spent_today(midnight) == frozenset()  # a new day, a new budget
    budgets.mark_spent("deal", midnight)
    assert budgets.spent_today(midnight) == {"deal"}


def test_pages_leave_out_an_offer_whose_budget_the_isolate_knows_is_spent() -> None:
    app, memory = make_app(), IsolateMemory()
    _, body = visit(app, STORY, dwell=300, memory=memory)
    assert f'data-nudge-rule="{RULE}"' in body
    memory.budgets.mark_spent(RULE, NOW)
    _, body = visit(app, STORY, dwell=300, memory=memory)
    assert f'data-nudge-rule="{RULE}"' not in body
    _, body = visit(app, STORY, dwell=300)  # another isolate has not learned it yet
    assert f'data-nudge-rule="{RULE}"' in body

