"""A negative-sampling zoo for RecBole covering the five families of the survey (arXiv 2409.07237).

``get_sampler(name, **params)`` builds any sampler; :class:`NegSamplingTrainer` plugs it into RecBole's own
``Trainer`` for RecBole's own models. Families (one module each): ``static`` (uniform, popularity,
predefined), ``dynamic`` (dns, dns_mn, cns, ahns, srns, mixgcf, dens; ``mcns`` in its own module), ``adversarial`` (irgan),
``reweighting`` (pris, tce), ``knowledge`` (kg_neighbour, kgpolicy).
"""

# every family registers its samplers on import (base.py knows none of them: no import circle)
from recsys_kit.negsampling import adversarial, dynamic, knowledge, mcns, reweighting, static  # noqa: E402,F401
from recsys_kit.negsampling.base import (
    SAMPLERS,
    Negatives,
    NegativeSampler,
    PositiveIndex,
    SamplingContext,
    context_from_arrays,
    get_sampler,
    uniform_candidates,
)

__all__ = [
    "SAMPLERS", "NegativeSampler", "Negatives", "PositiveIndex", "SamplingContext", "context_from_arrays",
    "get_sampler", "uniform_candidates", "NegSamplingTrainer", "PositiveTrainDataLoader", "build_context",
    "sampler_names", "run_experiment",
]


def sampler_names() -> list[str]:
    """Every registered sampler name, grouped by family."""
    order = ["static", "dynamic", "adversarial", "reweighting", "knowledge"]
    return sorted(SAMPLERS, key=lambda n: (order.index(SAMPLERS[n].family), list(SAMPLERS).index(n)))


def __getattr__(name: str):  # RecBole-importing pieces load on first use
    if name in ("NegSamplingTrainer", "PositiveTrainDataLoader", "build_context"):
        from recsys_kit.negsampling import hook

        return getattr(hook, name)
    if name == "run_experiment":
        from recsys_kit.negsampling.experiment import run_experiment

        return run_experiment
    raise AttributeError(name)
