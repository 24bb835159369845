"""The translation models, their incremental decoders, greedy and beam search, and the loss."""

from __future__ import annotations

import functools

import pytest
import torch

from stages.nmt.model import (
    Seq2SeqAttention,
    TransformerTranslator,
    beam_search,
    build_model,
    default_max_len,
    greedy_decode,
    length_penalty,
    parameter_count,
    translation_loss,
)

PAD, BOS, EOS = 0, 1, 2
SYMBOLS = 10  # toy tokens 3..12
VOCAB = 3 + SYMBOLS

SPECS = {
    "bahdanau": {
        "name": "lstm-additive",
        "architecture": "seq2seq",
        "embedding": 16,
        "hidden": 24,
        "layers": 2,
        "dropout": 0.1,
        "attention": "bahdanau",
    },
    "luong": {
        "architecture": "seq2seq",
        "embedding": 16,
        "hidden": 24,
        "layers": 1,
        "dropout": 0.1,
        "attention": "luong",
    },
    "transformer": {
        "name": "small-transformer",
        "architecture": "transformer",
        "d_model": 32,
        "heads": 4,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "feedforward": 64,
        "dropout": 0.1,
        "max_len": 64,
    },
}
# without input feeding teacher forcing runs in one pass: the same contracts must hold
SPECS |= {
    f"{arch}-parallel": {**SPECS[arch], "input_feeding": False} for arch in ("bahdanau", "luong")
}
ARCHS = list(SPECS)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra threads only add synchronisation, which on a busy CPU costs
    seconds per test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(arch: str, seed: int = 0, src_vocab: int = VOCAB, tgt_vocab: int = VOCAB):
    torch.manual_seed(seed)
    return build_model(SPECS[arch], src_vocab, tgt_vocab, PAD).eval()


def padded(rows: list[list[int]], width: int | None = None) -> torch.Tensor:
    width = width or max(map(len, rows))
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


def random_sources(n: int, seed: int, low: int = 3, high: int = 7) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high, (n,), generator=g).tolist()
    return [torch.randint(3, VOCAB, (length,), generator=g).tolist() for length in lengths]


def reversal_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sources = random_sources(n, seed)
    targets = [s[::-1] for s in sources]
    return (
        padded(sources),
        padded([[BOS, *t] for t in targets]),
        padded([[*t, EOS] for t in targets]),
    )


def sequence_log_prob(model, src: torch.Tensor, tokens: list[int], finished: bool) -> float:
    """Teacher-forced log-probability of `tokens` (+ eos when finished) given one source."""
    target = [*tokens, EOS] if finished else tokens
    if not target:
        return 0.0
    tgt_in = torch.tensor([[BOS, *target[:-1]]])
    with torch.no_grad():
        log_probs = model(src.unsqueeze(0), tgt_in).log_softmax(-1)[0]
    return float(log_probs.gather(1, torch.tensor(target)[:, None]).sum())


def train_reversal(arch: str, steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "transformer":
        model = TransformerTranslator(
            VOCAB, VOCAB, PAD, d_model=32, heads=2, encoder_layers=1, decoder_layers=2,
            feedforward=64, dropout=0.0,
        )  # fmt: skip
        lr = 5e-3
    else:
        spec = SPECS[arch]
        model = Seq2SeqAttention(
            VOCAB, VOCAB, PAD, embedding=32, hidden=64, dropout=0.0,
            attention=spec["attention"], input_feeding=spec.get("input_feeding", True),
        )  # fmt: skip
        lr = 3e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        src, tgt_in, targets = reversal_batch(64, seed=1000 + step)
        loss = translation_loss(model(src, tgt_in), targets, PAD, label_smoothing=0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@functools.cache
def partly_trained(arch: str) -> torch.nn.Module:
    """A few steps into learning reversal (20; 25 without input feeding, which is slower to
    leave one output length): outputs of varied lengths ending in eos, and still unsure enough
    that beam search and greedy decoding disagree."""
    return train_reversal(arch, 25 if arch.endswith("parallel") else 20).eval()


# --------------------------------------------------------------------------------------------
# Shapes and the incremental interface


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_state_select(arch):
    model = make(arch, src_vocab=11, tgt_vocab=17)
    src = padded([[3, 4, 5, 6, 7, 8, 9], [3, 4], [5, 6, 7], []])  # the last one empty
    tgt_in = torch.tensor([[BOS, 3, 4, 5, 6]] * 4)
    with torch.no_grad():
        logits = model(src, tgt_in)
        assert logits.shape == (4, 5, 17)
        assert torch.isfinite(logits).all()

        state = model.encode(src)
        log_probs, state, attention = model.decode_step(state, torch.full((4,), BOS))
        assert log_probs.shape == (4, 17) and attention.shape == (4, 7)
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(4), atol=1e-5)

        index = torch.tensor([2, 2, 0, 1, 3])
        chosen = state.select(index)
        prev = torch.tensor([3, 3, 4, 5, 6])
        picked, _, picked_attention = model.decode_step(chosen, prev)
        assert picked.shape == (5, 17) and picked_attention.shape == (5, 7)
        direct, _, direct_attention = model.decode_step(state, prev[[2, 3, 0, 4]])
    assert torch.allclose(picked[0], picked[1])
    assert torch.allclose(picked[[2, 3, 0, 4]], direct, atol=1e-5)
    assert torch.allclose(picked_attention[[2, 3, 0, 4]], direct_attention, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_incremental_decoding_matches_teacher_forcing(arch):
    model = make(arch)
    src, tgt_in, _ = reversal_batch(6, seed=3)
    with torch.no_grad():
        expected = model(src, tgt_in).log_softmax(-1)
        state = model.encode(src)
        steps = []
        for t in range(tgt_in.size(1)):
            log_probs, state, _ = model.decode_step(state, tgt_in[:, t])
            steps.append(log_probs)
    real = tgt_in != PAD  # after a target's end the two may differ: pad is a real input here
    assert torch.allclose(torch.stack(steps, 1)[real], expected[real], atol=1e-5)


# --------------------------------------------------------------------------------------------
# Masking


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_logits_or_decoding(arch):
    model = make(arch)
    sources = random_sources(5, seed=4)
    src = padded(sources)
    wider = padded(sources, width=src.size(1) + 5)
    _, tgt_in, _ = reversal_batch(5, seed=5)
    with torch.no_grad():
        logits = model(src, tgt_in)
        assert torch.allclose(model(wider, tgt_in), logits, atol=1e-5)
        for i, source in enumerate(sources):  # alone, without any padding
            alone = model(torch.tensor([source]), tgt_in[i : i + 1])[0]
            assert torch.allclose(alone, logits[i], atol=1e-5)

    for decode in (greedy_decode, lambda m, s, b, e: beam_search(m, s, b, e, beam_size=3)):
        narrow, wide = decode(model, src, BOS, EOS), decode(model, wider, BOS, EOS)
        assert narrow.tokens == wide.tokens
        assert narrow.finished == wide.finished
        assert narrow.scores == pytest.approx(wide.scores, abs=1e-4)
        for a, b in zip(narrow.attention, wide.attention, strict=True):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_target_side_is_causal(arch):
    model = make(arch)
    src, tgt_in, _ = reversal_batch(4, seed=6)
    tgt_in = tgt_in.clone()
    tgt_in[tgt_in == PAD] = 5  # full-length targets: no padding mask in the way
    changed = tgt_in.clone()
    changed[:, 3] = torch.where(changed[:, 3] == 7, 8, 7)
    with torch.no_grad():
        before, after = model(src, tgt_in), model(src, changed)
    assert torch.allclose(before[:, :3], after[:, :3], atol=1e-6)
    assert not torch.allclose(before[:, 3:], after[:, 3:], atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_is_a_distribution_over_real_source_tokens(arch):
    model = make(arch)
    sources = random_sources(6, seed=7, low=1, high=8)
    src = padded(sources, width=10)
    with torch.no_grad():
        state = model.encode(src)
        prev = torch.full((6,), BOS)
        for _ in range(3):
            log_probs, state, attention = model.decode_step(state, prev)
            assert torch.allclose(attention.sum(-1), torch.ones(6), atol=1e-5)
            assert (attention >= 0).all()
            assert (attention[src == PAD] == 0).all()
            assert (attention[src != PAD] > 0).all()
            prev = log_probs.argmax(-1)

    for decoded in (greedy_decode(model, src, BOS, EOS), beam_search(model, src, BOS, EOS)):
        for source, tokens, matrix in zip(sources, decoded.tokens, decoded.attention, strict=True):
            assert matrix.shape == (len(tokens), len(source))
            assert torch.allclose(matrix.sum(-1), torch.ones(len(tokens)), atol=1e-5)


def test_transformer_attention_is_the_last_layers_cross_attention_over_heads():
    model = make("transformer")
    src, tgt_in, _ = reversal_batch(4, seed=14)
    captured = []

    def ask_for_weights(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

    cross = model.transformer.decoder.layers[-1].multihead_attn
    hooks = [
        cross.register_forward_pre_hook(ask_for_weights, with_kwargs=True),
        cross.register_forward_hook(lambda module, args, output: captured.append(output[1])),
    ]
    try:
        with torch.no_grad():
            model(src, tgt_in)
    finally:
        for hook in hooks:
            hook.remove()
    (expected,) = captured  # [B, T, S], from nn.Transformer's own forward pass

    with torch.no_grad():
        state = model.encode(src)
        for t in range(tgt_in.size(1)):
            _, state, attention = model.decode_step(state, tgt_in[:, t])
            real = tgt_in[:, t] != PAD
            assert torch.allclose(attention[real], expected[real, t], atol=1e-5)


# --------------------------------------------------------------------------------------------
# Decoding


def test_length_penalty_values():
    assert length_penalty(1, 0.6) == pytest.approx(1.0)
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(19, 0.5) == pytest.approx(2.0)
    assert length_penalty(30, 0.0) == 1.0


@pytest.mark.parametrize("arch", ARCHS)
def test_pad_and_bos_are_never_generated(arch):
    model = make(arch)
    with torch.no_grad():
        model.output.bias[[PAD, BOS]] = 100.0  # the model would like nothing better
        model.output.bias[EOS] = -100.0  # and no early stop makes the check vacuous
    src = padded(random_sources(4, seed=15))
    for decoded in (
        greedy_decode(model, src, BOS, EOS),
        beam_search(model, src, BOS, EOS, beam_size=3),
    ):
        assert all(tokens and not {PAD, BOS} & set(tokens) for tokens in decoded.tokens)


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_size_one_is_greedy(arch):
    model = partly_trained(arch)
    src = padded(random_sources(12, seed=8))
    greedy = greedy_decode(model, src, BOS, EOS)
    beam = beam_search(model, src, BOS, EOS, beam_size=1)
    assert len({len(t) for t in greedy.tokens}) > 2  # the model's outputs vary in length
    assert beam.tokens == greedy.tokens
    assert beam.finished == greedy.finished
    assert beam.scores == pytest.approx(greedy.scores, abs=1e-4)
    for a, b in zip(beam.attention, greedy.attention, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
@pytest.mark.parametrize("arch", ARCHS)
def test_beam_is_never_worse_than_greedy_by_its_own_criterion(arch, alpha):
    model = partly_trained(arch)
    src = padded(random_sources(16, seed=9))
    greedy = greedy_decode(model, src, BOS, EOS)
    beam = beam_search(model, src, BOS, EOS, beam_size=5, length_penalty=alpha)

    def normalized(decoded, i):
        steps = len(decoded.tokens[i]) + decoded.finished[i]
        return decoded.scores[i] / length_penalty(steps, alpha)

    gains = [normalized(beam, i) - normalized(greedy, i) for i in range(len(src))]
    assert min(gains) >= -1e-4
    assert max(gains) > 1e-3  # the comparison is not vacuous: beam search found better ones


@pytest.mark.parametrize("search", ["greedy", "beam"])
@pytest.mark.parametrize("arch", ARCHS)
def test_decoded_sequences_are_clean_and_scored_by_the_model(arch, search):
    sources = random_sources(8, seed=10)
    src = padded(sources, width=9)
    model = partly_trained(arch)
    ends = []
    for max_len in (None, 2):  # stopping at eos, and at the step limit
        if search == "greedy":
            decoded = greedy_decode(model, src, BOS, EOS, max_len=max_len)
        else:
            decoded = beam_search(model, src, BOS, EOS, beam_size=4, max_len=max_len)
        assert len(decoded) == 8
        ends += decoded.finished
        for i, source in enumerate(sources):
            tokens, limit = decoded.tokens[i], max_len or default_max_len(len(source))
            assert not {PAD, BOS, EOS} & set(tokens)
            assert len(tokens) <= limit
            if not decoded.finished[i]:
                assert len(tokens) == limit
            rescored = sequence_log_prob(model, src[i], tokens, decoded.finished[i])
            assert decoded.scores[i] == pytest.approx(rescored, abs=1e-3)
    assert True in ends and False in ends

    short = beam_search(model, src, BOS, EOS, beam_size=4, max_len=2)
    assert all(len(t) <= 2 for t in short.tokens)
    assert all(len(t) <= 2 for t in greedy_decode(model, src, BOS, EOS, max_len=2).tokens)


@pytest.mark.parametrize("arch", ["luong", "transformer"])
def test_decoding_uses_eval_mode_and_restores_the_mode(arch):
    model = make(arch).train()
    src = padded(random_sources(4, seed=11))
    first = greedy_decode(model, src, BOS, EOS)
    assert model.training
    second = beam_search(model.train(), src, BOS, EOS, beam_size=1)
    assert model.training
    assert first.tokens == second.tokens  # no dropout noise inside decoding


# --------------------------------------------------------------------------------------------
# Learning a toy task


@pytest.mark.parametrize(
    ("arch", "steps"),
    [("bahdanau", 120), ("luong", 120), ("bahdanau-parallel", 120), ("transformer", 200)],
)
def test_learns_to_reverse_sequences(arch, steps):
    model = train_reversal(arch, steps)
    sources = random_sources(200, seed=12)
    decoded = greedy_decode(model, padded(sources), BOS, EOS)
    accuracy = sum(t == s[::-1] for t, s in zip(decoded.tokens, sources, strict=True)) / 200
    assert accuracy >= 0.9
    # the attention (what the report's heatmaps show) has learnt the anti-diagonal alignment
    rows = [
        int(matrix[i].argmax()) == len(source) - 1 - i
        for source, matrix in zip(sources, decoded.attention, strict=True)
        for i in range(matrix.size(0))
    ]
    assert sum(rows) / len(rows) >= 0.8
    assert model.training  # decoding gave the mode back


# --------------------------------------------------------------------------------------------
# Loss, size, factory


def test_loss_ignores_padding_and_smooths_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    targets = torch.tensor([[3, 4, 5, 2, PAD], [6, 2, PAD, PAD, PAD]])
    real = targets != PAD
    loss = translation_loss(logits, targets, PAD, label_smoothing=0.1)

    log_probs = logits.log_softmax(-1)[real]
    nll = -log_probs.gather(1, targets[real][:, None]).squeeze(1)
    expected = (0.9 * nll - 0.1 * log_probs.mean(-1)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    loss.backward()
    assert (logits.grad[~real] == 0).all() and (logits.grad[real] != 0).any()
    noisy = logits.detach().clone()
    noisy[~real] = 100 * torch.randn_like(noisy[~real])
    assert translation_loss(noisy, targets, PAD).item() == pytest.approx(
        translation_loss(logits.detach(), targets, PAD).item(), rel=1e-6
    )
    plain = translation_loss(logits.detach(), targets, PAD, label_smoothing=0.0)
    assert plain.item() == pytest.approx(nll.mean().item(), rel=1e-5)


def test_build_model_and_parameter_count():
    seq2seq = build_model(SPECS["bahdanau"], 30, 40, PAD)
    transformer = build_model(SPECS["transformer"], 30, 40, PAD)
    assert isinstance(seq2seq, Seq2SeqAttention) and isinstance(transformer, TransformerTranslator)
    assert seq2seq.decoder.hidden_size == 24 and seq2seq.decoder.num_layers == 2
    assert transformer.d_model == 32 and len(transformer.transformer.decoder.layers) == 2
    assert seq2seq.output.out_features == 40 and transformer.pad_id == PAD

    for model in (seq2seq, transformer):
        assert parameter_count(model) == sum(p.numel() for p in model.parameters())
    bigger = build_model({**SPECS["bahdanau"], "hidden": 48}, 30, 40, PAD)
    assert parameter_count(bigger) > parameter_count(seq2seq)
    seq2seq.output.requires_grad_(False)
    assert parameter_count(seq2seq, trainable_only=True) == parameter_count(seq2seq) - 40 * 25

    with pytest.raises(ValueError, match="architecture"):
        build_model({"architecture": "rnn"}, 30, 40, PAD)
    with pytest.raises(TypeError):
        build_model({"architecture": "transformer", "width": 3}, 30, 40, PAD)
    with pytest.raises(ValueError, match="attention"):
        build_model({"architecture": "seq2seq", "attention": "dot"}, 30, 40, PAD)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ARCHS)
def test_runs_on_cuda(arch):
    model = make(arch).cuda()
    src = padded(random_sources(4, seed=13)).cuda()
    _, tgt_in, targets = reversal_batch(4, seed=13)
    logits = model.train()(src, tgt_in.cuda())
    translation_loss(logits, targets.cuda(), PAD).backward()
    for decoded in (greedy_decode(model, src, BOS, EOS), beam_search(model, src, BOS, EOS)):
        assert len(decoded) == 4 and all(a.device.type == "cpu" for a in decoded.attention)
