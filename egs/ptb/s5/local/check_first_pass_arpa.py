#!/usr/bin/env python3
"""Check the ARPA file of local/make_first_pass_arpa.sh against PocketSphinx's own scores.

Usage: local/check_first_pass_arpa.py ARPA TEXT [--num-utts 50]
For every word of the first utterances of TEXT (Kaldi ``text``) and ``</s>``, given its two
previous words, compares ``lmrescore``'s back-off score of the ARPA file with PocketSphinx's
``NGramModel.prob`` on the original en-us.lm.bin (natural log). Words outside the LM's
vocabulary are counted apart (PocketSphinx gives them its "zero", the ARPA its ``<unk>``).
"""

import argparse
import os

import pocketsphinx
import torch

from lmrescore.lm.arpa import NgramLM


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arpa")
    p.add_argument("text")
    p.add_argument("--num-utts", type=int, default=50)
    args = p.parse_args()
    logmath = pocketsphinx.LogMath()
    theirs = pocketsphinx.NGramModel(pocketsphinx.Config(), logmath, os.path.join(
        pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin"))
    ours = NgramLM.from_file(args.arpa)
    ids = ours.vocab.ids
    with open(args.text, encoding="utf-8") as f:
        sentences = [line.split()[1:] for line, _ in zip(f, range(args.num_utts))]
    diffs, oov = [], 0
    for words in sentences:
        history = ["<s>"]
        for w in words + ["</s>"]:
            context = history[-2:]
            history.append(w)
            if any(x not in ids for x in context + [w]):
                oov += 1
                continue
            state = ours.start(1)
            for x in context:
                state = ours.step(state, torch.tensor([ids[x]]))
            mine = float(ours.token_log_probs(state, torch.tensor([0]), torch.tensor([ids[w]])))
            diffs.append(abs(mine - logmath.log_to_ln(theirs.prob([w] + context[::-1]))))
    print(f"{len(diffs)} trigram queries in the LM's vocabulary: max |ARPA - PocketSphinx| "
          f"{max(diffs):.6f} nats, mean {sum(diffs) / len(diffs):.6f} (the ARPA file keeps 4 "
          f"decimals of log10); {oov} queries with a word outside it")


if __name__ == "__main__":
    main()
