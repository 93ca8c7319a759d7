"""A hand-built 2-layer attention-only model with a planted induction circuit (known answers for the scores).

Residual stream (d = 2V): a token slot (one-hot of the current token) and a previous-token slot.
- layer 0, head 0: previous-token head (attends to position t−1), OV copies the token slot into the
  previous-token slot (so it does not raise any logit: EP = 0);
- layer 1, head 0: induction head, query = current token, key = previous-token slot (attends to the
  position right after an earlier occurrence of the current token), OV copies that token into the token
  slot with gain ``copy_gain`` (EP = +1);
- head 1 of each layer: zero QK (uniform attention) and zero OV.
Unembedding reads the token slot. Computed in factored form so it is fast for a 512-token vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llm_dynamics_kit.copying.adapters import LMAdapter


class PlantedInductionModel(LMAdapter):
    def __init__(self, vocab_size: int = 512, max_len: int = 256, sharpness: float = 30.0, copy_gain: float = 10.0):
        self.model = None
        self.n_layers, self.n_heads, self.max_len, self.vocab_size = 2, 2, max_len, vocab_size
        self.sharpness, self.copy_gain = sharpness, copy_gain

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def _forward(self, ids: torch.Tensor):
        b, t = ids.shape
        onehot = F.one_hot(ids, self.vocab_size).float()  # (B, T, V)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        pos = torch.arange(t)
        prev_scores = self.sharpness * (pos[None, :] == pos[:, None] - 1).float()  # (T, T)
        a0 = prev_scores.masked_fill(~causal, float("-inf")).softmax(-1).expand(b, t, t)
        uniform = torch.zeros(t, t).masked_fill(~causal, float("-inf")).softmax(-1).expand(b, t, t)
        prev_slot = a0 @ onehot  # (B, T, V): ≈ one-hot of the previous token
        ind_scores = self.sharpness * onehot @ prev_slot.transpose(1, 2)  # (B, T, T)
        a1 = ind_scores.masked_fill(~causal, float("-inf")).softmax(-1)
        logits = onehot + self.copy_gain * (a1 @ onehot)  # token slot after both layers
        return logits, [torch.stack([a0, uniform], 1), torch.stack([a1, uniform], 1)]

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self._forward(ids)[0]

    def attention(self, ids: torch.Tensor) -> list[torch.Tensor]:
        return self._forward(ids)[1]

    def ov_weights(self, layer: int, fold_norms: bool = True) -> dict[str, torch.Tensor]:
        v = self.vocab_size
        eye, zero = torch.eye(v), torch.zeros(v, v)
        w_e = torch.cat([eye, zero])  # (2V, V): tokens enter the token slot
        w_u = torch.cat([eye, zero], 1)  # (V, 2V): logits read the token slot
        read_token = torch.cat([eye, zero], 1)  # (V, 2V) value projection of the token slot
        if layer == 0:
            w_o0 = torch.cat([zero, eye])  # writes the previous-token slot
        else:
            w_o0 = self.copy_gain * torch.cat([eye, zero])  # writes the token slot
        w_v = torch.stack([read_token, torch.zeros_like(read_token)])  # (H, D=V, 2V)
        w_o = torch.stack([w_o0, torch.zeros_like(w_o0)])  # (H, 2V, D)
        return {"W_E": w_e, "W_U": w_u, "W_V": w_v, "W_O": w_o}
