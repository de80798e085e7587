"""A local Hugging Face causal LM read as an order-K word model (``score --model hf:DIR``).

The model this defines: log p(w | history) is the HF model's log-probability of w's tokens
(the sum over them) after its BOS token and the history's last K words, or all of them when
there are fewer (``<s>`` is one of the K slots of an order-K history, so the window never
reaches past the sentence start). The window is read as a sentence of its own: the text of its
words joined by single spaces, as the model's own tokenizer spells it. A word is spelt by
itself (``tokenizer(word)``) as the window's first word and with a leading space
(``tokenizer(" " + word)``) after another, GPT-2's convention; at load every pair of
consecutive vocabulary words is checked to spell together as the two spellings end to end, so
the window's tokens are the tokenizer's tokens of its text. ``</s>`` is the tokenizer's EOS
token; ``<unk>`` its unknown token where it has one of its own (not its BOS or EOS), else the
text ``<unk>`` spelt as any word. Every other word has tokens: there is no OOV.

A ``State`` row is the window's word ids, (n, K) int64, right-aligned, -1 before its first word
(the window's tokens are a function of them); ``step`` shifts a word in (the oldest out past K,
the window emptied at ``<s>``), and ``token_log_probs`` reads each queried (window, word) from
scratch, BOS first: every query's tokens in one right-padded batch, a block of rows per
forward. No ``logits``: the words of a word list are not the model's whole distribution.
transformers is imported only when a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lmrescore.errors import InputError
from lmrescore.formats.limits import MAX_ORDER
from lmrescore.lm.interface import BLOCK_ROWS, reset
from lmrescore.vocab import BOS, EOS, EPS, UNK, Vocab

LOGIT_FLOATS = 1 << 25  # rows x positions x tokens of log-probs per forward (128 MB float32)


@dataclass
class Spellings:
    """Word id -> its tokens, ragged, as a window's first word (kind 0) or after a word (1).

    Attributes:
        values: (N,) token ids.
        start, length: (2, V) where each word's tokens of each kind are in ``values``.
    """

    values: Tensor
    start: Tensor
    length: Tensor

    @classmethod
    def of(cls, first: list[list[int]], later: list[list[int]]) -> "Spellings":
        """From each word's token lists, by word id."""
        lists = first + later
        length = torch.tensor([len(t) for t in lists], dtype=torch.int64)
        values = torch.tensor([i for t in lists for i in t], dtype=torch.int64)
        return cls(values, (length.cumsum(0) - length).view(2, -1), length.view(2, -1))

    def tokens(self, words: Tensor, bos: int) -> tuple[Tensor, Tensor, Tensor]:
        """The token ids of windows of words, BOS first.

        Args:
            words: (P, W) word ids, right-aligned, -1 before each row's first word.
            bos: the token that opens every row (and pads it).
        Returns:
            (P, T) token ids, right-padded with ``bos``; (P,) each row's length; (P,) the
            position of the first token of each row's last word.
        """
        present = words >= 0
        first = present & ~torch.cat([torch.zeros_like(present[:, :1]), present[:, :-1]], 1)
        kind, w = (~first).long(), words.clamp(min=0)
        length = torch.where(present, self.length[kind, w], 0)  # (P, W)
        ends = length.cumsum(1) + 1
        begins = ends - length
        ids = torch.full((words.shape[0], int(ends[:, -1].max())), bos, dtype=torch.int64)
        n = length.flatten()
        cell = torch.repeat_interleave(torch.arange(n.numel()), n)  # each token's (row, word)
        offset = torch.arange(cell.numel()) - (n.cumsum(0) - n)[cell]
        src = self.start[kind, w].flatten()[cell] + offset
        ids[cell // words.shape[1], begins.flatten()[cell] + offset] = self.values[src]
        return ids, ends[:, -1], begins[:, -1]


class HFWordLM:
    """A Hugging Face causal LM as a ``LanguageModel`` over the words of ``vocab``, exact at
    order ``order`` (K words of context; module doc)."""

    def __init__(self, model: nn.Module, spellings: Spellings, vocab: Vocab, order: int,
                 bos_token: int) -> None:
        self.model = model.eval()
        self.spellings, self.vocab, self.bos_token = spellings, vocab, bos_token
        self.vocab_size, self.order = len(vocab), order
        self.device = next(model.parameters()).device
        self.num_tokens = model.get_output_embeddings().weight.shape[0]
        self.work: dict[str, int] = {}  # positions whose full token distribution was computed

    def start(self, n: int) -> Tensor:
        """(n, K) int64 -1: empty windows."""
        return torch.full((n, self.order), -1, dtype=torch.int64, device=self.device)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        """Each window one word longer, the oldest dropped past K; emptied at ``<s>`` (and at
        ``<eps>``, the slot before a sentence): (n, K), (n,) word ids -> (n, K)."""
        window = torch.cat([state[:, 1:], tokens[:, None]], dim=1)
        empty = (tokens == self.vocab.bos) | (tokens == self.vocab.ids[EPS])
        return window.masked_fill(empty[:, None], -1)

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        """log p(word tokens[q] | window rows[q]): the sum of its tokens' log-probs, each
        distinct (window, word) read once.

        Args:
            state: (n, K) windows.
            rows, tokens: (Q,) int64 (CPU).
            block_rows: rows per forward at most (fewer where they are long).
        Returns:
            (Q,) float32 (CPU).
        """
        if not rows.numel():
            return torch.empty(0, dtype=torch.float32)
        pairs, which = torch.unique(torch.stack([rows, tokens], 1), dim=0, return_inverse=True)
        words = torch.cat([state[pairs[:, 0].to(self.device)].cpu(), pairs[:, 1:]], dim=1)
        ids, lengths, begins = self.spellings.tokens(words, self.bos_token)
        out = torch.empty(ids.shape[0], dtype=torch.float32)
        by_length = torch.argsort(lengths, descending=True)
        i = 0
        while i < by_length.numel():
            t = int(lengths[by_length[i]])
            q = by_length[i: i + max(1, min(block_rows, LOGIT_FLOATS // (t * self.num_tokens)))]
            out[q] = self._forward(ids[q, :t], lengths[q], begins[q])
            i += q.numel()
        return out[which]

    @torch.no_grad()
    def _forward(self, ids: Tensor, lengths: Tensor, begins: Tensor) -> Tensor:
        """(B,) the summed log-probs of positions ``begins``..``lengths``-1 of each row of
        ``ids`` (B, T), right-padded (CPU in and out)."""
        pos = torch.arange(ids.shape[1])
        mask = pos < lengths[:, None]
        logits = self.model(input_ids=ids.to(self.device),
                            attention_mask=mask.long().to(self.device)).logits
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        next_lp = log_probs.gather(2, ids[:, 1:, None].to(self.device))[..., 0].cpu()
        take = (pos[1:] >= begins[:, None]) & mask[:, 1:]
        self.work["softmax_rows"] = self.work.get("softmax_rows", 0) + int(mask.sum())
        return torch.where(take, next_lp, 0.0).sum(1)

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T) float32 log p(targets | inputs so far) where ``mask`` (0 elsewhere), by
        stepping the window; with ``order`` k < K only the last k words are read. Also the
        (B, K) final state (``order`` None; else None)."""
        state = self.start(inputs.shape[0]) if state is None else state
        forget = torch.arange(self.order, device=self.device) < self.order - (order or self.order)
        out = torch.zeros(inputs.shape, dtype=torch.float32)
        for t in range(inputs.shape[1]):
            if starts is not None:
                state = reset(self, state, starts[:, t].nonzero().squeeze(1))
            state = self.step(state, inputs[:, t].to(self.device))
            q = mask[:, t].nonzero().squeeze(1).cpu()
            out[q, t] = self.token_log_probs(state.masked_fill(forget, -1), q,
                                             targets[:, t].cpu()[q])
        return out.to(inputs.device), (state if order is None else None)


def load_hf_lm(directory: str, vocab: Vocab, order: int | None, device: str = "cpu") -> HFWordLM:
    """The causal LM and tokenizer saved in ``directory`` (local files only; no code of the
    folder's is run), as an order-``order`` model over ``vocab``'s words.

    Raises:
        InputError: naming ``hf:directory``, when there is no order, transformers is missing,
            the folder does not load, or its tokenizer does not spell words as the module doc
            says.
    """
    where = f"hf:{directory}"
    if order is None:
        raise InputError(f"{where}: a Hugging Face LM has no order of its own: give --order K, "
                         "the words of context it reads")
    if not 1 <= order <= MAX_ORDER:
        raise InputError(f"{where}: --order must be 1..{MAX_ORDER}, got {order}")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise InputError(f"{where}: needs transformers (pip install 'lmrescore[hf]')") from None
    if not Path(directory).is_dir():
        raise InputError(f"{where}: not a folder")
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True,
                                                  trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True,
                                                     trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{where}: does not load as a causal LM and tokenizer: {reason}") from None
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    if eos is None:
        raise InputError(f"{where}: the tokenizer has no EOS token to score </s> with")
    first, later = spell(tokenizer, vocab, bos, eos, where)
    longest = 1 + (order + 1) * max(len(t) for t in first + later)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and longest > limit:
        raise InputError(f"{where}: {order} words of context and a word can take {longest} "
                         f"tokens, more than the model's {limit} positions: lower --order")
    return HFWordLM(model.to(device), Spellings.of(first, later), vocab, order, bos)


def spell(tokenizer: Any, vocab: Vocab, bos: int, eos: int,
          where: str) -> tuple[list[list[int]], list[list[int]]]:
    """Each word's tokens as a window's first word and after another (module doc).

    Raises:
        InputError: a word with no tokens, or two words that the tokenizer spells together
            otherwise than end to end.
    """
    words = list(vocab.words)
    first = tokenizer(words, add_special_tokens=False)["input_ids"]
    later = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    own_unk = [unk] if unk is not None and unk not in (bos, eos) else None
    for word, tokens in ((EPS, []), (BOS, []), (EOS, [eos]), (UNK, own_unk)):
        if tokens is not None:
            first[vocab.ids[word]] = later[vocab.ids[word]] = tokens
    plain = [i for i, w in enumerate(words) if w not in (EPS, BOS, EOS, UNK)]
    for i in plain:
        if not first[i] or not later[i]:
            raise InputError(f"{where}: the tokenizer spells the word {words[i]!r} as no tokens")
    pairs = list(zip(plain, plain[1:]))
    joined = tokenizer([f"{words[a]} {words[b]}" for a, b in pairs],
                       add_special_tokens=False)["input_ids"]
    for (a, b), tokens in zip(pairs, joined):
        if tokens != first[a] + later[b]:
            raise InputError(f"{where}: the tokenizer spells {words[a]!r} {words[b]!r} as "
                             f"{tokens}, not as the words' own tokens {first[a]} + {later[b]}: "
                             "it does not spell text word by word")
    return first, later
