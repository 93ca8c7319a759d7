import pytest

from llm_dynamics_kit.moe.sizes import expert_sizes
from shared.errors import ConfigError


def test_paper_arithmetic_sizes_for_the_0_4b_and_3b_models():
    assert expert_sizes("arithmetic", 8, 12288, multiple_of=32) == [864, 1056, 1248, 1440, 1632, 1824, 2016, 2208]
    assert expert_sizes("arithmetic", 8, 32768, multiple_of=256) == [2304, 2816, 3328, 3840, 4352, 4864, 5376, 5888]


@pytest.mark.parametrize("strategy", ["homogeneous", "arithmetic", "geometric", "hybrid"])
def test_sizes_sum_to_budget_and_are_multiples(strategy):
    sizes = expert_sizes(strategy, 8, 1024, multiple_of=4)
    assert sum(sizes) == 1024 and all(s % 4 == 0 and s > 0 for s in sizes)
    assert sizes == sorted(sizes)


def test_hybrid_and_custom_and_errors():
    assert expert_sizes("hybrid", 8, 1024, 8) == [64, 64, 64, 64, 128, 128, 256, 256]
    assert expert_sizes("custom", 2, 96, 8, custom=[2, 1]) == [32, 64]
    with pytest.raises(ConfigError):
        expert_sizes("custom", 3, 96, 8, custom=[1, 2])
    with pytest.raises(ConfigError):
        expert_sizes("nonsense", 8, 1024)
    with pytest.raises(ConfigError):
        expert_sizes("homogeneous", 8, 16, 8)
