"""How a path's score is made from a lattice's score columns, in Kaldi's conventions."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from lmrescore.lattice.lattice import Lattice


@dataclass(frozen=True)
class Weights:
    """Score weights, named as Kaldi's lattice tools name them.

    A path scores ``acoustic_scale * am + lm_scale * lm - word_ins_penalty * words`` (log domain,
    higher is better). Kaldi's LMWT is ``1 / acoustic_scale``.

    Attributes:
        acoustic_scale: weight of the "am" column (``--acoustic-scale``, or 1 / ``--inv-acoustic-scale``).
        lm_scale: weight of the "lm" column (``--lm-scale``).
        word_ins_penalty: subtracted per word arc (label > 0) (``--word-ins-penalty``).
    """

    acoustic_scale: float = 1.0
    lm_scale: float = 1.0
    word_ins_penalty: float = 0.0

    def arc_scores(self, lat: "Lattice") -> Tensor:
        """(A,) float64 weighted score of each arc of ``lat``: ``acoustic_scale * am + lm_scale *
        lm``, less ``word_ins_penalty`` on arcs with a word (label > 0)."""
        score = (self.acoustic_scale * lat.scores["am"].double()
                 + self.lm_scale * lat.scores["lm"].double())
        return score - self.word_ins_penalty * (lat.label > 0).double()
