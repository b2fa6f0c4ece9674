"""Next-best-action: value of the learned policy against the simulator's truth, baselines and the
oracle; off-policy estimates of it; /v1/recommend latency.

- A simulated world (full: 60k customers; --quick: 12k). Uplift learners (T and X on LightGBM,
  conversion and churn) train on the logged actions of 80 % of the customers, decision days
  2025-03-01..08-01, early-stopped on 08-31..10-01; per outcome, the learner `journey uplift`
  would name challenger (its targeting's off-policy value on validation) serves the policy.
- Holdout: the other 20 % as of 2025-11-01 (a sample). Each policy picks at most one action per
  customer within the same rules (catalog eligibility, caps, cool-downs, exclusions from the
  real history); its value is the mean true incremental value per customer (the oracle's
  per-customer effects, 30-day horizon) of what it picked:
  learned policy, oracle (true effects), propensity x value (P(convert | action), no uplift),
  the best single action for everyone (chosen in hindsight), a random allowed action.
- Off-policy: a randomised log on the same customers (each future replica draws "no action" or
  an allowed action uniformly; outcomes from futures the oracle did not use); IPS, SNIPS and
  doubly robust estimates of the learned policy's value, against its simulated truth.
- Latency: POST /v1/recommend at 100 req/s on `journey serve` (the serving benchmark's world).

    python benchmarks/nba.py [--quick]
"""

from __future__ import annotations

import sys

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.nba")

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import parser, peak_rss_mb, write_result
from benchmarks.lib import nba_eval as ev
from benchmarks.lib.simstore import build_sim_store

TARGETS = {"policy_vs_oracle_min": 0.8, "policy_vs_propensity_min": 1.3,
           "ope_rel_error_max": 0.10, "recommend_p99_ms_max": 15.0}
DECIDE = datetime(2025, 11, 1, tzinfo=UTC)
HORIZON = 30
SEED = 5
EXPERIMENT: dict[str, Any] = {
    "name": "nba-bench", "horizon_days": HORIZON, "control_rate": 0.1,
    "windows": {"train": {"start": "2025-03-01", "end": "2025-08-01"},
                "valid": {"start": "2025-08-31", "end": "2025-10-01"},
                "test": {"start": "2025-10-31", "end": "2025-11-01"}},
    "learners": [{"kind": "t"}, {"kind": "x"}], "seed": 0,
}


def _holdout_ids(ids: pd.Series, share: float) -> set[str]:
    key = pd.util.hash_pandas_object(ids.astype(str) + "#holdout", index=False)
    return set(ids[(key % 1000) < share * 1000])


def train(store: Path, log: list[str]) -> tuple[dict[str, Any], set[str], dict[str, Any]]:
    """Both learners for both outcomes on the non-holdout customers; per outcome, the better on
    validation as `journey uplift` judges it."""
    from features.spec import load_spec
    from training.uplift import challenger_key, fit_one, load_decisions, qini_scores
    from training.uplift_ope import policy_value
    from training.uplift_spec import UpliftExperiment

    exp = UpliftExperiment.model_validate(EXPERIMENT)
    spec = load_spec()
    d = load_decisions(exp, store, spec, log=log.append)
    held = _holdout_ids(pd.concat([d.train["customer_id"], d.valid["customer_id"]]), 0.2)
    d = type(d)(d.train[~d.train["customer_id"].isin(held)],
                d.valid[~d.valid["customer_id"].isin(held)], d.test, d.definition_hash)
    fitted: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, tuple[float, float]]] = {}
    info: dict[str, Any] = {"train_rows": len(d.train), "valid_rows": len(d.valid),
                            "treated_train": int((d.train["action"] != "").sum())}
    for learner in exp.learners:
        started = time.perf_counter()
        models = {o: fit_one(exp, d, o, learner, None) for o in ("convert", "churn")}
        fitted[learner.kind] = models
        info[f"fit_seconds_{learner.kind}"] = round(time.perf_counter() - started, 1)
        qini = {o: qini_scores(m, d.valid)["qini_mean"] for o, m in models.items()}
        value = {o: policy_value(m, d.valid, exp.control_rate) for o, m in models.items()}
        keys[learner.kind] = {o: challenger_key(value[o].lift.value, qini[o]) for o in models}
        info[f"valid_qini_{learner.kind}"] = {o: round(v, 4) for o, v in qini.items()}
        info[f"valid_lift_{learner.kind}"] = {o: round(v.lift.value, 5) for o, v in value.items()}
        info[f"valid_unsupported_{learner.kind}"] = {o: round(v.unsupported, 3)
                                                     for o, v in value.items()}
    # As `journey uplift` picks each outcome's challenger.
    info["learner"] = {o: max(fitted, key=lambda k: keys[k][o]) for o in ("convert", "churn")}
    return fitted, held, info


def _trained(root: Path, store: Path) -> tuple[dict[str, Any], set[str], dict[str, Any]]:
    """``train``'s result, reused while the store and the experiment are the same."""
    import json
    import pickle

    key = json.dumps({"experiment": EXPERIMENT, "selection": "valid-policy-lift-on-learned-support",
                      "store": json.loads(
        (root / "built.json").read_text())["key"]}, sort_keys=True)
    cache = root / "uplift-models.pkl"
    if cache.is_file():
        saved = pickle.loads(cache.read_bytes())
        if saved["key"] == key:
            return saved["fitted"], saved["held"], {**saved["info"], "cached": True}
    log: list[str] = []
    started = time.perf_counter()
    fitted, held, info = train(store, log)
    info["train_seconds"] = round(time.perf_counter() - started, 1)
    cache.write_bytes(pickle.dumps({"key": key, "fitted": fitted, "held": held, "info": info}))
    return fitted, held, info


def evaluate(sim: Path, store: Path, fitted: dict[str, Any], best: dict[str, str],
             held: set[str], sample: int, replicas: int, log_replicas: int) -> dict[str, Any]:
    from features.batch import micros
    from features.history import HistoryIndex
    from features.spec import load_spec
    from features.store import EventStore
    from models.actions import load_catalog

    spec, catalog = load_spec(), load_catalog()
    with EventStore(store, read_only=True) as es:
        index = HistoryIndex.load(es, spec)
        first = dict(es.con.execute(
            "SELECT customer_id, epoch_us(min(ts)) FROM events GROUP BY customer_id").fetchall())
    known = sorted(c for c in held if first[c] < micros(DECIDE))
    ids = sorted(np.random.default_rng(SEED).choice(known, min(sample, len(known)),
                                                    replace=False).tolist())
    numbers = np.array([int(c[1:]) for c in ids], np.int64)
    started = time.perf_counter()
    truth_frame = _oracle(sim, numbers, replicas)
    assert truth_frame["customer_id"].tolist() == ids
    oracle_s = time.perf_counter() - started
    h = ev.holdout(index, spec, ids, micros(DECIDE))
    truth, base = ev.true_effects(truth_frame, catalog.ids)
    allow = ev.allowed(catalog, h)
    models = {o: fitted[k][o] for o, k in best.items()}
    # The learned policies as the service ranks: never an action the log almost never sent
    # to such a customer; "unrestricted" ranks those on the model's guess too.
    choices = {
        "policy": ev.greedy(catalog, h, *ev.uplift_dicts(h.frame, models),
                            ev.unchecked(h.frame, models)),
        "policy_unrestricted": ev.greedy(catalog, h, *ev.uplift_dicts(h.frame, models)),
        "oracle": ev.greedy(catalog, h, truth, base),
        "propensity": ev.greedy(catalog, h, *ev.uplift_dicts(
            h.frame, {"convert": models["convert"]}, arms=True)),
        "random": ev.random_choice(allow, SEED),
        **{f"policy_{k}": ev.greedy(catalog, h, *ev.uplift_dicts(h.frame, fitted[k]),
                                    ev.unchecked(h.frame, fitted[k]))
           for k in fitted},
        **{f"policy_{k}_unrestricted": ev.greedy(catalog, h,
                                                 *ev.uplift_dicts(h.frame, fitted[k]))
           for k in fitted},
    }
    out: dict[str, Any] = {f"value_{k}": round(ev.policy_value(catalog, h, c, truth, base), 4)
                           for k, c in choices.items()}
    single, single_value = ev.best_single(catalog, h, allow, truth, base)
    out.update(value_best_single=round(single_value, 4), best_single_action=single)
    out["choice_shares"] = {k: pd.Series([a or "none" for a in c]).value_counts(
        normalize=True).round(3).to_dict() for k, c in choices.items()}
    out["oracle_seconds"] = round(oracle_s, 1)
    out.update(_ope(sim, catalog, h, numbers, allow, choices["policy"], models, log_replicas,
                    replicas, out["value_policy"]))
    out["holdout_customers"] = len(ids)
    return out


def _oracle(sim: Path, numbers: np.ndarray, replicas: int) -> pd.DataFrame:
    import json

    import yaml

    from features.simulator.oracle import cutoff_day, oracle
    from features.simulator.params import compile_params

    manifest = json.loads((sim / "simulation.json").read_text())
    params = compile_params(yaml.safe_load((sim / "params.yaml").read_text()), "params.yaml")
    frame = oracle(params, manifest["seed"], manifest["days"], numbers,
                   cutoff_day(params.start, DECIDE), HORIZON, replicas, effects=True)
    return frame


def _ope(sim: Path, catalog: Any, h: ev.Holdout, numbers: np.ndarray, allow: list[list[str]],
         choice: list[str | None], models: dict[str, Any], log_replicas: int, replicas: int,
         truth: float) -> dict[str, Any]:
    import json

    import yaml

    from features.simulator.arms import arm_draws
    from features.simulator.oracle import cutoff_day
    from features.simulator.params import compile_params

    manifest = json.loads((sim / "simulation.json").read_text())
    params = compile_params(yaml.safe_load((sim / "params.yaml").read_text()), "params.yaml")
    started = time.perf_counter()
    draws = arm_draws(params, manifest["seed"], manifest["days"], numbers,
                      cutoff_day(params.start, DECIDE), HORIZON,
                      range(replicas + 1, replicas + 1 + log_replicas))
    assert draws.arms[1:] == catalog.ids and np.array_equal(draws.customers, numbers)
    rng = np.random.default_rng(SEED + 1)
    n = len(numbers)
    arm_of = {a: k + 1 for k, a in enumerate(catalog.ids)}
    options = [[0, *[arm_of[a] for a in ok]] for ok in allow]
    cust = np.tile(np.arange(n), log_replicas)
    rep = np.repeat(np.arange(log_replicas), n)
    pick = np.array([options[c][rng.integers(len(options[c]))] for c in cust], np.int64)
    prop = np.array([1.0 / len(options[c]) for c in cust])
    log = ev.Log(cust, pick, prop, {
        "convert": draws.converted[pick, rep, cust].astype(float),
        "churn": (~draws.active[pick, rep, cust]).astype(float),
    })
    q = {o: np.asarray(models[o].predict_arms(h.frame)) for o in ("convert", "churn")}
    est = ev.off_policy(catalog, h, choice, log, q)
    out = {k: round(v, 4) for k, v in est.items()}
    out.update(ope_truth=truth, ope_log_rows=len(cust), ope_seconds=round(
        time.perf_counter() - started, 1))
    for name in ("ips", "snips", "dr"):
        out[f"ope_{name}_rel_error"] = round(abs(est[f"ope_{name}"] - truth) / abs(truth), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--skip-latency", action="store_true", help="value and OPE only")
    args = p.parse_args(argv)
    quick = args.quick
    customers = args.customers or (12_000 if quick else 60_000)
    sample, replicas, log_replicas = (1_500, 100, 40) if quick else (6_000, 200, 100)
    started = time.perf_counter()
    root = args.work / f"nba-{customers}"
    store = build_sim_store(root, customers, 365, seed=SEED)
    fitted, held, info = _trained(root, store)
    figures: dict[str, Any] = evaluate(root / "sim", store, fitted, info["learner"], held,
                                       sample, replicas, log_replicas)
    if not args.skip_latency:
        from benchmarks.lib.nba_latency import recommend_latency

        lat = recommend_latency(args.work, 3000 if quick else 20_000, 100.0,
                                10.0 if quick else 60.0)
        figures["recommend_p99_ms"] = lat["recommend"]["p99"]
        figures["recommend_p50_ms"] = lat["recommend"]["p50"]
        figures["recommend_errors"] = lat["recommend"]["errors"]
        figures["latency"] = lat
    v = figures
    figures["policy_vs_oracle"] = round(v["value_policy"] / v["value_oracle"], 3)
    figures["policy_vs_propensity"] = round(v["value_policy"] / v["value_propensity"], 3)
    figures["training"] = info
    figures["data"] = {"customers": customers, "days": 365, "seed": SEED,
                       "decide": DECIDE.isoformat(), "horizon_days": HORIZON,
                       "holdout_share": 0.2, "oracle_replicas": replicas,
                       "ope_log_replicas": log_replicas, "experiment": EXPERIMENT}
    figures["targets"] = TARGETS
    figures["pass"] = {
        "policy_vs_oracle": v["policy_vs_oracle"] >= TARGETS["policy_vs_oracle_min"],
        "policy_vs_propensity": v["policy_vs_propensity"] >= TARGETS["policy_vs_propensity_min"],
        "ope_dr": v["ope_dr_rel_error"] <= TARGETS["ope_rel_error_max"],
        "recommend_p99": v.get("recommend_p99_ms", np.inf) <= TARGETS["recommend_p99_ms_max"],
    }
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_result("nba", figures, quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
