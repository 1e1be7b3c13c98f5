"""`nlq-tui sample OUT`: write a synthetic, learnable Ego4D-layout tree."""

from __future__ import annotations

import argparse
import json
import sys

from engine.ego4d.layout import DEFAULT_FEATURES, KNOWN_DIMS

DEFAULT_SEED = 20211013  # engine.sample.DEFAULT_SEED; repeated so that --help needs no numpy
DEFAULT_VIDEOS = 48


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="write a synthetic Ego4D-layout tree (what sample_data/ is made with)",
        description="Write a synthetic Ego4D-layout tree: ego4d.json, narration.json, nlq_{train,val,"
        "test_unannotated}.json and one 256-d fp16 feature file per video. Deterministic from --seed. "
        "Up to 100 videos: short videos and clips (the sample_data/ profile); more: Ego4D-like lengths "
        "(~210 narrations per video per pass).",
    )
    p.add_argument("out", metavar="OUT", help="folder to write the tree into (created if missing)")
    p.add_argument("--videos", type=int, default=DEFAULT_VIDEOS, help=f"number of videos (default {DEFAULT_VIDEOS})")
    p.add_argument(
        "--no-features",
        action="store_true",
        help="write empty .pt files instead of features (for annotation-only benchmarks)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.sample import write_sample

    step = max(1, args.videos // 20)

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty() and (done % step == 0 or done == total):
            print(f"\r  videos {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    s = write_sample(args.out, videos=args.videos, features=not args.no_features, seed=args.seed, progress=progress)
    d = s.as_dict()
    if args.json:
        print(json.dumps(d))
        return 0
    q = d["queries"]
    sv = d["split_videos"]
    from engine.textsafe import one_line

    print(
        f"wrote {one_line(d['root'])} ({d['profile']} profile, seed {d['seed']}) in {d['seconds']:.1f} s, "
        f"{d['bytes'] / 1e6:.1f} MB"
    )
    print(f"  videos {d['videos']} (train {sv['train']}, val {sv['val']}, test {sv['test']}), clips {d['clips']}")
    print(f"  narrations: pass 1 {d['narrations_pass_1']:,}, pass 2 {d['narrations_pass_2']:,}")
    print(f"  NLQ queries: train {q['train']}, val {q['val']}, test {q['test']}")
    print(
        f"  feature files: {d['feature_files']}"
        + (" (empty)" if args.no_features else f" ({DEFAULT_FEATURES}, {KNOWN_DIMS[DEFAULT_FEATURES]}-d)")
    )
    return 0
