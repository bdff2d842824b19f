"""Search strategies behind one interface (`base.Strategy`), one module each, over the space
in `search.space`."""

from edgetune.search.base import STRATEGIES, SearchContext, Strategy, TrialOutcome, get_strategy

__all__ = ["STRATEGIES", "SearchContext", "Strategy", "TrialOutcome", "get_strategy"]
