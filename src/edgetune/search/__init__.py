"""Search strategies behind one interface (`base.Strategy`), one module each."""

from edgetune.search.base import STRATEGIES, SearchContext, Strategy, TrialOutcome, get_strategy

__all__ = ["STRATEGIES", "SearchContext", "Strategy", "TrialOutcome", "get_strategy"]
