"""Peer: ChannelAttribution 2.2.5's Markov model (order 1), run in benchmarks/.venv-peers.

    python attribution_ca.py PATHS.parquet OUT.json [--nsim-start N] [--seed S] [--ncore C]

PATHS.parquet has one row per distinct path: ``path`` ("a > b > c"), ``total_conversions``
and ``total_null``. ``markov_model`` estimates the conversion probabilities by simulating
paths through the fitted chain (at least ``nsim_start`` of them, more until its results vary by
less than ``conv_par`` between folds), so a fixed seed makes a run repeatable. OUT.json holds,
per channel, the attributed conversions and removal effect, the first/last-touch conversions of
``heuristic_models``, the transition matrix, the parameters and the seconds each call took.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

import pandas as pd
from ChannelAttribution import heuristic_models, markov_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths")
    p.add_argument("out")
    p.add_argument("--nsim-start", type=float, default=1e6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ncore", type=int, default=1)
    p.add_argument("--conv-par", type=float, default=0.05)
    args = p.parse_args()
    data = pd.read_parquet(args.paths)
    params = {"order": 1, "nsim_start": args.nsim_start, "seed": args.seed, "ncore": args.ncore,
              "conv_par": args.conv_par, "max_step": None, "sep": ">"}
    started = time.perf_counter()
    result = markov_model(data, "path", "total_conversions", var_null="total_null",
                          out_more=True, verbose=False, flg_pro=False, **params)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    heuristic = heuristic_models(data, "path", "total_conversions", flg_pro=False)
    heuristic_seconds = time.perf_counter() - started
    conv = result["result"].set_index("channel_name")["total_conversions"]
    removal = result["removal_effects"].set_index("channel_name")["removal_effect"]
    heur = heuristic.set_index("channel_name")
    channels = {
        str(c): {"conversions": float(conv[c]), "removal_effect": float(removal[c]),
                 "first_touch": float(heur.loc[c, "first_touch"]),
                 "last_touch": float(heur.loc[c, "last_touch"])}
        for c in conv.index
    }
    out = {"version": version("ChannelAttribution"), "params": params, "seconds": seconds,
           "heuristic_seconds": heuristic_seconds, "paths": len(data),
           "total_conversions": float(data["total_conversions"].sum()),
           "total_null": float(data["total_null"].sum()), "channels": channels,
           "transition_matrix": result["transition_matrix"].astype(str).values.tolist()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
