"""Expert hidden sizes for heterogeneous MoE (HMoE brief §2.6), scaled to a total FFN budget."""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import ConfigError

STRATEGIES = ("homogeneous", "arithmetic", "geometric", "hybrid", "custom")
PAPER_ARITHMETIC_RATIO = 23 / 9  # relative sizes 9, 11, ..., 23 for 8 experts


def relative_sizes(strategy: str, n: int, ratio: float | None = None,
                   custom: Sequence[float] | None = None) -> list[float]:
    """Unscaled relative expert sizes, smallest first."""
    if n < 1:
        raise ConfigError(f"the number of experts must be >= 1, got {n}")
    if strategy == "homogeneous":
        return [1.0] * n
    if strategy == "arithmetic":
        # 8 experts with the paper's ratio give exactly 9, 11, ..., 23 (up to the common factor 1/9)
        ratio = PAPER_ARITHMETIC_RATIO if ratio is None else float(ratio)
        if ratio < 1:
            raise ConfigError(f"size_ratio (max/min expert size) must be >= 1, got {ratio}")
        return [1.0 + (ratio - 1.0) * i / max(n - 1, 1) for i in range(n)]
    if strategy == "geometric":
        return [2.0 ** i for i in range(n)]
    if strategy == "hybrid":
        # the paper's 1,1,1,1,2,2,4,4 for 8 experts: half of size 1, a quarter each of sizes 2 and 4
        quarter = n // 4
        if n < 4:
            raise ConfigError("the hybrid size strategy needs at least 4 experts")
        return [1.0] * (n - 2 * quarter) + [2.0] * quarter + [4.0] * quarter
    if strategy == "custom":
        if not custom or len(custom) != n or min(custom) <= 0:
            raise ConfigError(f"size_strategy='custom' needs ffn.custom_sizes: {n} positive numbers, got {custom}")
        return sorted(float(c) for c in custom)
    raise ConfigError(f"unknown size strategy {strategy!r}; choose one of {STRATEGIES}")


def expert_sizes(strategy: str, n: int, total: int, multiple_of: int = 8, ratio: float | None = None,
                 custom: Sequence[float] | None = None) -> list[int]:
    """Integer expert widths in ``strategy``'s proportions, multiples of ``multiple_of``, summing to ``total``.

    Rounding error is absorbed by the largest expert (exact when ``total`` is a multiple of ``multiple_of``).
    """
    rel = relative_sizes(strategy, n, ratio, custom)
    if total < n * multiple_of:
        raise ConfigError(f"total FFN budget {total} is too small for {n} experts of at least {multiple_of} units")
    scale = total / sum(rel)
    sizes = [max(multiple_of, int(round(r * scale / multiple_of)) * multiple_of) for r in rel]
    sizes[-1] += total - sum(sizes)
    if sizes[-1] < multiple_of:
        raise ConfigError(f"cannot fit {strategy} sizes {rel} into a budget of {total}; raise ffn.hidden")
    return sizes
