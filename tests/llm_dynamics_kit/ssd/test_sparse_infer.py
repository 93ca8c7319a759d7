import pytest
import torch
import torch.nn.functional as F

from llm_dynamics_kit.ssd.sparse_infer import choose_path, sparse_ffn
from shared.errors import ConfigError


def reference(x, w_in_blocks, w_out_blocks, experts):
    e, m, d = w_in_blocks.shape
    h = F.relu(x @ w_in_blocks.reshape(e * m, d).T).view(-1, e, m)
    keep = torch.zeros(x.shape[0], e).scatter(-1, experts, 1.0)
    return (h * keep[..., None]).reshape(-1, e * m) @ w_out_blocks.reshape(e * m, d)


@pytest.mark.parametrize("n_tokens", [1, 3, 40])
@pytest.mark.parametrize("path", ["auto", "gather", "loop", "grouped"])
def test_paths_match_masked_dense(path, n_tokens):
    g = torch.Generator().manual_seed(n_tokens)
    w_in, w_out = torch.randn(8, 4, 16, generator=g), torch.randn(8, 4, 16, generator=g)
    x = torch.randn(n_tokens, 16, generator=g)
    experts = torch.randn(n_tokens, 8, generator=g).topk(3, -1).indices
    out = sparse_ffn(x, w_in, w_out, experts, F.relu, path)
    assert torch.allclose(out, reference(x, w_in, w_out, experts), atol=1e-4)


def test_choice_by_batch_shape_and_bad_path():
    assert choose_path(1) == "loop" and choose_path(4) == "gather" and choose_path(128) == "grouped"
    with pytest.raises(ConfigError, match="path"):
        sparse_ffn(torch.zeros(1, 4), torch.zeros(2, 2, 4), torch.zeros(2, 2, 4), torch.zeros(1, 1, dtype=torch.long),
                   F.relu, "triton")
