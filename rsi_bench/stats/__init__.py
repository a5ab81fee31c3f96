"""The benchmark's statistics: scores, paired comparisons, power and the verdict.

- ``passk``: unbiased pass@k (Chen et al., 2021).
- ``intervals``: Wilson intervals for a pass rate; the paired bootstrap for a difference.
- ``paired``: exact McNemar and sign-flip tests; ``compare_paired`` (candidate vs base).
- ``multiple``: Holm's adjustment across generations.
- ``trend``: OLS trend of score over generations.
- ``power``: minimum detectable effect; noise floor from ``noop`` controls.
- ``verdict``: ``decide``, pooling loop seeds into "improved" / "no evidence" / "regressed".
- ``validity``: simulations showing the verdict's error rates (not imported here).

Only numpy and the standard library are used; scipy and statsmodels are the tests' references.
"""

from rsi_bench.stats.intervals import paired_bootstrap, wilson_interval
from rsi_bench.stats.multiple import holm
from rsi_bench.stats.paired import Comparison, compare_paired, mcnemar_exact, sign_flip_test
from rsi_bench.stats.passk import mean_pass_at_k, pass_at_k
from rsi_bench.stats.power import minimum_detectable_effect, noise_floor
from rsi_bench.stats.trend import Trend, trend_test
from rsi_bench.stats.verdict import SeedPair, Verdict, decide

__all__ = [
    "Comparison",
    "SeedPair",
    "Trend",
    "Verdict",
    "compare_paired",
    "decide",
    "holm",
    "mcnemar_exact",
    "mean_pass_at_k",
    "minimum_detectable_effect",
    "noise_floor",
    "paired_bootstrap",
    "pass_at_k",
    "sign_flip_test",
    "trend_test",
    "wilson_interval",
]
