#!/usr/bin/env python3
"""Export a trained model for scoring: config, vocabulary and float16 weights in one file.

Usage:
    python3 models/export_model.py exp/ptb-lstm256-afp8/best.pt models/ptb-lstm256-afp8.pt
"""

import argparse

from lmrescore.lm.checkpoint import export_for_inference

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("src", help="training checkpoint (best.pt)")
    p.add_argument("dst", help="output checkpoint")
    p.add_argument("--float32", action="store_true", help="keep float32 weights")
    args = p.parse_args()
    export_for_inference(args.src, args.dst, half=not args.float32)
