"""Language models "grok" to copy (Lv et al., arXiv 2409.09281): copy accuracy and induction heads over training.

- :mod:`.task`: the random-token prefix/suffix context-copying test set (brief §2.2).
- :mod:`.adapters`: one interface over our :class:`~llm_dynamics_kit.model.Transformer` and HF causal LMs
  (GPT-2, Llama, the kit's HF wrapper): logits, attention probabilities, per-head OV weights.
- :mod:`.evaluate`: :func:`copy_accuracy` (one teacher-forced forward per query, exact = greedy decoding).
- :mod:`.induction`: :func:`induction_scores` (prefix-matching attention × OV eigenvalue positivity, brief §2.3).
- :mod:`.icl`: Olsson et al.'s in-context-learning score (loss late − loss early in the context).
- :mod:`.track`: the training callback, the checkpoint sweep and the onset analysis (brief §8.4).
"""

from llm_dynamics_kit.copying.evaluate import CopyResult, copy_accuracy, greedy_copy_accuracy
from llm_dynamics_kit.copying.induction import InductionScores, induction_scores
from llm_dynamics_kit.copying.task import CopyTask, make_copy_task

__all__ = ["CopyResult", "CopyTask", "InductionScores", "copy_accuracy", "greedy_copy_accuracy",
           "induction_scores", "make_copy_task"]
