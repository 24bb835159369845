"""Translation models over token ids: an attentional LSTM seq2seq and a Transformer, one
incremental-decoding interface for both, greedy and beam-search decoding, and the loss.

Conventions: tensors are batch-first. `src` is [B, S] right-padded with `pad_id`; `tgt_in` is
[B, T] (bos + target) and the targets are [B, T] (target + eos). Both models implement

    encode(src) -> state
    decode_step(state, prev_tokens [N]) -> (log_probs [N, V], new_state, attention [N, S])

where `state.select(index)` gathers (reorders, expands) the N rows of a state, which is all beam
search needs. `attention` is a distribution over the source positions: rows sum to 1 and are
exactly zero on padded positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "Decoded",
    "DecoderState",
    "IncrementalDecoder",
    "Seq2SeqAttention",
    "Seq2SeqState",
    "TransformerState",
    "TransformerTranslator",
    "beam_search",
    "build_model",
    "default_max_len",
    "greedy_decode",
    "length_penalty",
    "parameter_count",
    "translation_loss",
]


class DecoderState(Protocol):
    def select(self, index: Tensor) -> DecoderState:
        """The rows `index` of the state (beam reordering or expansion)."""
        ...


class IncrementalDecoder(Protocol):
    pad_id: int

    def encode(self, src: Tensor) -> DecoderState: ...

    def decode_step(
        self, state: DecoderState, prev_tokens: Tensor
    ) -> tuple[Tensor, DecoderState, Tensor]: ...


def source_mask(src: Tensor, pad_id: int) -> Tensor:
    """[B, S] bool, True on real tokens. An all-pad (empty) source keeps its first position so
    attention and packing never see a row with nothing to attend to."""
    mask = src != pad_id
    mask[:, 0] |= ~mask.any(dim=1)
    return mask


# --------------------------------------------------------------------------------------------
# Seq2seq with attention


class BahdanauAttention(nn.Module):
    """Additive attention: score(q, m) = v . tanh(W_k m + W_q q)."""

    def __init__(self, query_size: int, memory_size: int, size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, size, bias=False)
        self.query = nn.Linear(query_size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """[N, T, Q] queries, [N, S, A] keys -> [N, T, S]."""
        return self.v(torch.tanh(keys.unsqueeze(1) + self.query(query).unsqueeze(2))).squeeze(-1)


class LuongAttention(nn.Module):
    """Multiplicative ("general") attention: score(q, m) = q . W m."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """[N, T, Q] queries, [N, S, Q] keys -> [N, T, S]."""
        return torch.bmm(query, keys.transpose(1, 2))


@dataclass
class Seq2SeqState:
    memory: Tensor  # [N, S, 2H] encoder outputs
    keys: Tensor  # [N, S, A] attention keys, precomputed once per source
    mask: Tensor  # [N, S] True on real source tokens
    hidden: Tensor  # [L, N, H]
    cell: Tensor  # [L, N, H]
    feed: Tensor  # [N, H] previous attentional vector (input feeding; zeros without it)

    def select(self, index: Tensor) -> Seq2SeqState:
        return Seq2SeqState(
            memory=self.memory.index_select(0, index),
            keys=self.keys.index_select(0, index),
            mask=self.mask.index_select(0, index),
            hidden=self.hidden.index_select(1, index),
            cell=self.cell.index_select(1, index),
            feed=self.feed.index_select(0, index),
        )


class Seq2SeqAttention(nn.Module):
    """Bidirectional LSTM encoder (packed), bridged final states, LSTM decoder with Bahdanau
    (additive) or Luong (general) attention over the encoder outputs, with or without Luong's
    input feeding.

    Each decoder step: LSTM([emb(y_{t-1}); feed_{t-1}]) -> h_t (without input feeding:
    LSTM(emb(y_{t-1}))); attention(h_t, memory) -> context c_t; feed_t = tanh(W [h_t; c_t]);
    logits = W_o feed_t. With input feeding teacher forcing runs that step in a loop (the
    projection W_o after it, over every step at once), so it is exactly the incremental decoder
    and causal by construction. Without it, h_t does not depend on the attention, so teacher
    forcing runs the LSTM over the whole target in one fused call and attends for all steps at
    once: 1.5-2x a training step on a CPU (an epoch 19 -> 15 s), the incremental decoder
    unchanged.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        pad_id: int,
        embedding: int = 256,
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.2,
        attention: Literal["bahdanau", "luong"] = "bahdanau",
        input_feeding: bool = True,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.input_feeding = input_feeding
        self.hidden_size = hidden
        self.layers = layers
        self.src_embedding = nn.Embedding(src_vocab, embedding, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab, embedding, padding_idx=pad_id)
        between = dropout if layers > 1 else 0.0
        self.encoder = nn.LSTM(
            embedding, hidden, layers, batch_first=True, bidirectional=True, dropout=between
        )
        self.bridge_hidden = nn.Linear(2 * hidden, hidden)
        self.bridge_cell = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.LSTM(
            embedding + (hidden if input_feeding else 0),
            hidden,
            layers,
            batch_first=True,
            dropout=between,
        )
        if attention == "bahdanau":
            self.attention: BahdanauAttention | LuongAttention = BahdanauAttention(
                hidden, 2 * hidden, hidden
            )
        elif attention == "luong":
            self.attention = LuongAttention(hidden, 2 * hidden)
        else:
            raise ValueError(f"attention must be 'bahdanau' or 'luong', not {attention!r}")
        self.combine = nn.Linear(3 * hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, tgt_vocab)

    def encode(self, src: Tensor) -> Seq2SeqState:
        batch, length = src.shape
        mask = source_mask(src, self.pad_id)
        lengths = mask.sum(dim=1).cpu()
        embedded = self.dropout(self.src_embedding(src))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, (h, c) = self.encoder(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=length)

        def bridge(final: Tensor, linear: nn.Linear) -> Tensor:
            # [L*2, B, H] -> [L, B, 2H]: forward and backward final states of each layer
            final = final.view(self.layers, 2, batch, self.hidden_size)
            return torch.tanh(linear(torch.cat([final[:, 0], final[:, 1]], dim=-1)))

        return Seq2SeqState(
            memory=memory,
            keys=self.attention.keys(memory),
            mask=mask,
            hidden=bridge(h, self.bridge_hidden).contiguous(),
            cell=bridge(c, self.bridge_cell).contiguous(),
            feed=memory.new_zeros(batch, self.hidden_size),
        )

    def _attend(self, state: Seq2SeqState, outputs: Tensor) -> tuple[Tensor, Tensor]:
        """Decoder outputs [N, T, H] -> attentional vectors [N, T, H], weights [N, T, S]."""
        scores = self.attention.scores(outputs, state.keys)
        weights = scores.masked_fill(~state.mask.unsqueeze(1), float("-inf")).softmax(dim=-1)
        context = torch.bmm(weights, state.memory)
        return torch.tanh(self.combine(torch.cat([outputs, context], dim=-1))), weights

    def _step(self, state: Seq2SeqState, tokens: Tensor) -> tuple[Seq2SeqState, Tensor]:
        """One decoder step up to the attentional vector (`feed` of the new state)."""
        inputs = self.dropout(self.tgt_embedding(tokens))
        if self.input_feeding:
            inputs = torch.cat([inputs, state.feed], dim=-1)
        output, (hidden, cell) = self.decoder(inputs.unsqueeze(1), (state.hidden, state.cell))
        feed, weights = self._attend(state, output)
        new_state = Seq2SeqState(state.memory, state.keys, state.mask, hidden, cell, feed[:, 0])
        return new_state, weights[:, 0]

    def _logits(self, feed: Tensor) -> Tensor:
        return self.output(self.dropout(feed))

    def decode_step(
        self, state: Seq2SeqState, prev_tokens: Tensor
    ) -> tuple[Tensor, Seq2SeqState, Tensor]:
        state, weights = self._step(state, prev_tokens)
        return self._logits(state.feed).log_softmax(dim=-1), state, weights

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        state = self.encode(src)
        if not self.input_feeding:
            embedded = self.dropout(self.tgt_embedding(tgt_in))
            outputs, _ = self.decoder(embedded, (state.hidden, state.cell))
            return self._logits(self._attend(state, outputs)[0])
        feeds = []
        for t in range(tgt_in.size(1)):
            state, _ = self._step(state, tgt_in[:, t])
            feeds.append(state.feed)
        # the vocabulary projection (most of a step's work) once over every step: one large
        # matrix product instead of one per token
        return self._logits(torch.stack(feeds, dim=1))


# --------------------------------------------------------------------------------------------
# Transformer


def sinusoidal_positions(length: int, size: int, device: torch.device | None = None) -> Tensor:
    """[length, size] sine/cosine position encodings of "Attention Is All You Need"."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, size, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / size)
    )
    table = torch.zeros(length, size, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : size // 2]
    return table


def causal_mask(length: int, device: torch.device) -> Tensor:
    """[T, T] bool, True where attention is forbidden (a query looking at a later key)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(diagonal=1)


@dataclass
class TransformerState:
    memory: Tensor  # [N, S, D] encoder output
    padding: Tensor  # [N, S] True on padded source positions
    layer_inputs: tuple[Tensor, ...]  # per decoder layer, its inputs so far [N, t, D]

    def select(self, index: Tensor) -> TransformerState:
        return TransformerState(
            memory=self.memory.index_select(0, index),
            padding=self.padding.index_select(0, index),
            layer_inputs=tuple(x.index_select(0, index) for x in self.layer_inputs),
        )


class TransformerTranslator(nn.Module):
    """`nn.Transformer` (pre-norm, batch-first) with scaled embeddings and sinusoidal positions.

    Incremental decoding keeps each decoder layer's inputs so far and runs only the newest
    position through the layers (its self-attention over the kept ones); it returns the last
    layer's cross-attention of that position, averaged over heads.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        pad_id: int,
        d_model: int = 256,
        heads: int = 4,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        feedforward: int = 512,
        dropout: float = 0.1,
        max_len: int = 256,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.d_model = d_model
        self.src_embedding = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, feedforward, dropout, batch_first=True, norm_first=True
        )
        # built here only to turn off nested tensors, which pre-norm layers cannot use anyway
        encoder = nn.TransformerEncoder(
            layer, encoder_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.transformer = nn.Transformer(
            d_model,
            heads,
            num_encoder_layers=encoder_layers,
            num_decoder_layers=decoder_layers,
            dim_feedforward=feedforward,
            dropout=dropout,
            custom_encoder=encoder,
            batch_first=True,
            norm_first=True,
        )
        self.output = nn.Linear(d_model, tgt_vocab)
        for embedding in (self.src_embedding, self.tgt_embedding):
            # N(0, 1/d) so that the sqrt(d) scaling gives unit-scale token vectors, comparable
            # to the positions (N(0, 1) scaled by 16 would drown them)
            nn.init.normal_(embedding.weight, std=d_model**-0.5)
            with torch.no_grad():
                embedding.weight[pad_id].zero_()

    def _embed(self, embedding: nn.Embedding, tokens: Tensor, offset: int = 0) -> Tensor:
        """Scaled embeddings plus the positions offset, offset + 1, ... of `tokens`' columns."""
        end = offset + tokens.size(1)
        positions = self.positions
        if end > positions.size(0):
            positions = sinusoidal_positions(end, self.d_model, tokens.device)
        x = embedding(tokens) * math.sqrt(self.d_model) + positions[offset:end]
        return self.dropout(x)

    def encode(self, src: Tensor) -> TransformerState:
        padding = ~source_mask(src, self.pad_id)
        memory = self.transformer.encoder(
            self._embed(self.src_embedding, src), src_key_padding_mask=padding
        )
        empty = memory.new_empty(src.size(0), 0, self.d_model)
        return TransformerState(memory, padding, (empty,) * len(self.transformer.decoder.layers))

    def decode_step(
        self, state: TransformerState, prev_tokens: Tensor
    ) -> tuple[Tensor, TransformerState, Tensor]:
        # nn.TransformerDecoder has no key-value cache: run over the whole prefix, each step
        # pays every layer's feed-forward and attention again for every earlier position.
        # Causal pre-norm layers let the newest position go through alone, attending to the
        # layer inputs kept from earlier steps (the same numbers, up to float rounding).
        step = state.layer_inputs[0].size(1)
        x = self._embed(self.tgt_embedding, prev_tokens.unsqueeze(1), offset=step)
        layers = self.transformer.decoder.layers
        kept, attention = [], None
        for i, (layer, earlier) in enumerate(zip(layers, state.layer_inputs, strict=True)):
            inputs = torch.cat([earlier, x], dim=1)
            kept.append(inputs)
            normed = layer.norm1(inputs)
            attended = layer.self_attn(normed[:, -1:], normed, normed, need_weights=False)[0]
            x = x + layer.dropout1(attended)
            context, weights = layer.multihead_attn(
                layer.norm2(x),
                state.memory,
                state.memory,
                key_padding_mask=state.padding,
                need_weights=i == len(layers) - 1,
                average_attn_weights=True,
            )
            attention = weights if weights is not None else attention
            x = x + layer.dropout2(context)
            x = x + layer._ff_block(layer.norm3(x))
        assert attention is not None
        log_probs = self.output(self.transformer.decoder.norm(x[:, -1])).log_softmax(dim=-1)
        return (
            log_probs,
            TransformerState(state.memory, state.padding, tuple(kept)),
            attention[:, -1],
        )

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        state = self.encode(src)
        hidden = self.transformer.decoder(
            self._embed(self.tgt_embedding, tgt_in),
            state.memory,
            tgt_mask=causal_mask(tgt_in.size(1), tgt_in.device),
            tgt_key_padding_mask=tgt_in == self.pad_id,
            memory_key_padding_mask=state.padding,
            tgt_is_causal=True,
        )
        return self.output(hidden)


# --------------------------------------------------------------------------------------------
# Decoding


@dataclass
class Decoded:
    """Per sentence: `tokens` without bos/eos; `scores` the sequence log-probability (eos
    included when generated); `attention` [len(tokens), source length] on the CPU, one row per
    output token over the sentence's non-pad source positions; `finished` whether eos was
    produced (False: stopped by max_len)."""

    tokens: list[list[int]]
    scores: list[float]
    attention: list[Tensor]
    finished: list[bool]

    def __len__(self) -> int:
        return len(self.tokens)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha; `length` counts eos when produced."""
    return ((5.0 + length) / 6.0) ** alpha


_penalty = length_penalty  # beam_search's `length_penalty` argument shadows the name


def default_max_len(source_length: int) -> int:
    return 2 * source_length + 10


def _limits(src: Tensor, pad_id: int, max_len: int | None) -> list[int]:
    """Per-sentence step limit: `max_len`, or one from the sentence's own (non-pad) length so
    that padding and batch company never change a decoding."""
    if max_len is not None:
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, not {max_len}")
        return [max_len] * src.size(0)
    return [default_max_len(int(n)) for n in (src != pad_id).sum(dim=1).tolist()]


def _forbid(log_probs: Tensor, tokens: tuple[int, ...]) -> Tensor:
    log_probs = log_probs.clone()
    log_probs[:, list(tokens)] = float("-inf")
    return log_probs


class _EvalMode:
    """Eval mode and no_grad inside, the model's previous mode restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.no_grad = torch.no_grad()

    def __enter__(self) -> None:
        self.training = self.model.training
        self.model.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        self.model.train(self.training)


def greedy_decode(
    model: nn.Module, src: Tensor, bos_id: int, eos_id: int, max_len: int | None = None
) -> Decoded:
    """Arg-max decoding of a batch; pad and bos are never produced."""
    decoder: Any = model
    pad_id = decoder.pad_id
    batch = src.size(0)
    limits = _limits(src, pad_id, max_len)
    lengths = source_mask(src, pad_id).sum(dim=1).tolist()
    with _EvalMode(model):
        state = decoder.encode(src)
        prev = torch.full((batch,), bos_id, dtype=torch.long, device=src.device)
        active = torch.ones(batch, dtype=torch.bool, device=src.device)
        limit = torch.tensor(limits, device=src.device)
        scores = torch.zeros(batch, device=src.device)
        chosen, attention = [], []
        for step in range(max(limits)):
            log_probs, state, weights = decoder.decode_step(state, prev)
            log_probs = _forbid(log_probs, (pad_id, bos_id))
            prev = log_probs.argmax(dim=-1)
            active &= step < limit
            scores += torch.where(active, log_probs.gather(1, prev[:, None]).squeeze(1), 0.0)
            chosen.append(torch.where(active, prev, eos_id))
            attention.append(weights)
            active &= prev != eos_id
            if not active.any():
                break
        tokens_all = torch.stack(chosen, dim=1).cpu()
        attention_all = torch.stack(attention, dim=1).float().cpu()
        tokens, attentions, finished = [], [], []
        for b in range(batch):
            row = tokens_all[b, : limits[b]].tolist()
            ended = eos_id in row
            row = row[: row.index(eos_id)] if ended else row
            tokens.append(row)
            attentions.append(attention_all[b, : len(row), : lengths[b]].clone())
            finished.append(ended)
    return Decoded(tokens, scores.cpu().tolist(), attentions, finished)


@dataclass
class _Hypothesis:
    normalized: float
    score: float
    tokens: list[int]
    attention: Tensor
    finished: bool


def beam_search(
    model: nn.Module,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    beam_size: int = 5,
    max_len: int | None = None,
    length_penalty: float = 0.6,
) -> Decoded:
    """Batched beam search. Each step keeps the `beam_size` best unfinished continuations of
    every sentence; an eos ranked among the top `beam_size` candidates finishes a hypothesis.
    A sentence is done when it has `beam_size` finished hypotheses or reaches its step limit
    (its unfinished beams then count as hypotheses too); the winner maximises
    score / ((5 + length) / 6) ** length_penalty. With beam_size=1 this is greedy decoding."""
    if beam_size < 1:
        raise ValueError("beam_size must be at least 1")
    decoder: Any = model
    pad_id = decoder.pad_id
    alpha = length_penalty
    batch, width = src.shape
    k = beam_size
    device = src.device
    limits = _limits(src, pad_id, max_len)
    lengths = source_mask(src, pad_id).sum(dim=1).tolist()
    finished: list[list[_Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch

    def hypothesis(row: int, score: float, steps: int, ended: bool, b: int) -> _Hypothesis:
        return _Hypothesis(
            normalized=score / _penalty(steps, alpha),
            score=score,
            tokens=history[row].tolist(),
            attention=attention[row, :, : lengths[b]].float().cpu(),
            finished=ended,
        )

    with _EvalMode(model):
        state = decoder.encode(src)
        state = state.select(torch.arange(batch, device=device).repeat_interleave(k))
        scores = torch.full((batch, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # every beam starts as the same empty hypothesis: expand one
        history = torch.empty(batch * k, 0, dtype=torch.long, device=device)
        attention = torch.empty(batch * k, 0, width, device=device)
        prev = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
        base = (torch.arange(batch, device=device) * k).unsqueeze(1)
        for step in range(max(limits)):
            log_probs, state, weights = decoder.decode_step(state, prev)
            log_probs = _forbid(log_probs, (pad_id, bos_id))
            vocab = log_probs.size(-1)
            candidates = (scores.reshape(-1, 1) + log_probs).view(batch, k * vocab)
            top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)
            origin, token = top_index // vocab, top_index % vocab
            is_eos = token == eos_id

            # eos among the top k: a finished hypothesis (history so far, eos not in tokens)
            ends = (is_eos[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().tolist()
            if ends:
                end_scores = top_scores.cpu()
                end_rows = (base + origin).cpu()
                for b, r in ends:
                    if not done[b]:
                        row, score = int(end_rows[b, r]), float(end_scores[b, r])
                        finished[b].append(hypothesis(row, score, step + 1, True, b))

            # the k best non-eos candidates continue (at most k of 2k candidates are eos)
            keep = torch.sort(is_eos.to(torch.int8), dim=1, stable=True).indices[:, :k]
            scores = top_scores.gather(1, keep)
            rows = (base + origin.gather(1, keep)).view(-1)
            prev = token.gather(1, keep).view(-1)
            history = torch.cat([history[rows], prev.unsqueeze(1)], dim=1)
            attention = torch.cat([attention[rows], weights[rows].unsqueeze(1)], dim=1)
            state = state.select(rows)

            alive_scores = None
            for b in range(batch):
                if done[b]:
                    continue
                if len(finished[b]) >= k:
                    done[b] = True
                elif step + 1 >= limits[b]:
                    if alive_scores is None:
                        alive_scores = scores.cpu()
                    for j in range(k):
                        score = float(alive_scores[b, j])
                        if math.isfinite(score):
                            finished[b].append(hypothesis(b * k + j, score, step + 1, False, b))
                    done[b] = True
            if all(done):
                break

    best = [max(hyps, key=lambda h: h.normalized) for hyps in finished]
    return Decoded(
        tokens=[h.tokens for h in best],
        scores=[h.score for h in best],
        attention=[h.attention for h in best],
        finished=[h.finished for h in best],
    )


# --------------------------------------------------------------------------------------------
# Loss, size, factory


def translation_loss(
    logits: Tensor, targets: Tensor, pad_id: int, label_smoothing: float = 0.1
) -> Tensor:
    """Mean token cross entropy over non-pad targets, with label smoothing, in float32 (the
    logits are bf16 under mixed precision)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        targets.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "seq2seq": Seq2SeqAttention,
    "transformer": TransformerTranslator,
}


def build_model(spec: dict[str, Any], src_vocab: int, tgt_vocab: int, pad_id: int) -> nn.Module:
    """A model from a params.yaml entry: `architecture` plus constructor keyword arguments
    (`name` is ignored)."""
    kwargs = {key: value for key, value in spec.items() if key not in ("name", "architecture")}
    architecture = spec.get("architecture")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture](src_vocab, tgt_vocab, pad_id, **kwargs)
