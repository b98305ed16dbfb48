from __future__ import annotations

import numpy as np
import pytest
import torch

from model.net import ModelConfig, SentimentNet, masked_softmax, reverse_within_length


def _batch(lengths: list[int], T: int, vocab: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (len(lengths), T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


def test_masked_softmax_padding_gets_zero_and_rows_sum_to_one() -> None:
    scores = torch.randn(4, 9)
    _, mask = _batch([9, 5, 1, 3], 9)
    w = masked_softmax(scores, mask)
    assert torch.all(w[mask == 0] == 0.0)
    assert torch.allclose(w.sum(1), torch.ones(4), atol=1e-6)


def test_masked_softmax_invariant_to_amount_of_padding() -> None:
    scores = torch.randn(1, 4)
    base = masked_softmax(scores, torch.ones(1, 4, dtype=torch.long))
    padded = masked_softmax(torch.cat([scores, torch.full((1, 20), 1e4)], 1), torch.cat([torch.ones(1, 4), torch.zeros(1, 20)], 1).long())
    assert torch.allclose(base, padded[:, :4], atol=1e-7)


def test_masked_softmax_gradient_stays_finite_when_padding_scores_overflow() -> None:
    # Padding scored far above the real tokens (dot attention over unbounded keys can): exp of it
    # overflows to inf. Its weight is 0 all the same, and no NaN may reach the gradient.
    scores = torch.cat([torch.randn(1, 4), torch.full((1, 3), 1e4)], 1).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    w = masked_softmax(scores, mask)
    (w * torch.arange(7.0)).sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[0, 4:] == 0.0)


def test_reverse_within_length_reverses_real_tokens_and_is_its_own_inverse() -> None:
    x = torch.arange(10, dtype=torch.float32).reshape(2, 5, 1)
    lengths = torch.tensor([5, 3])
    r = reverse_within_length(x, lengths)
    assert r[1, :, 0].tolist() == [7.0, 6.0, 5.0, 8.0, 9.0]  # padding stays in place
    assert torch.equal(reverse_within_length(r, lengths), x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_net_prediction_independent_of_batch_companions(cell: str, attention: str) -> None:
    torch.manual_seed(0)
    net = SentimentNet(ModelConfig(vocab_size=50, num_classes=3, embed_dim=16, hidden_size=8, cell=cell, attention=attention)).eval()  # type: ignore[arg-type]
    ids, mask = _batch([4, 17, 9], 17)
    with torch.no_grad():
        batched_logits, batched_w = net(ids, mask)
        alone_logits, alone_w = net(ids[:1, :4], mask[:1, :4])
    assert (batched_logits[0] - alone_logits[0]).abs().max() <= 1e-5
    assert (batched_w[0, :4] - alone_w[0]).abs().max() <= 1e-5
    assert np.all(batched_w[0, 4:].numpy() == 0.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cell", "rnn", "cell is 'rnn'; allowed values: lstm, gru"),
        ("attention", "Dot", "attention is 'Dot'; allowed values: additive, dot"),
        ("hidden_size", 0, "hidden_size is 0; it must be a positive integer"),
        ("embed_dim", "32", "embed_dim is '32'"),
        ("dropout", 1.0, "dropout is 1.0; it must be a number in \\[0, 1\\)"),
        ("pad_id", 50, "pad_id 50 is outside the vocabulary"),
    ],
)
def test_model_config_bad_value_fails_listing_what_is_allowed(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(vocab_size=50, num_classes=2, **{field: value})  # type: ignore[arg-type]
