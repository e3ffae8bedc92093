"""Write the report test fixtures: hand-chosen, paper-like audit results (NOT measured).

Each file mimics one audit's JSON as specified in issues 4-8 (key lists), with figures
chosen to resemble paper 1 (Recall@1 ~15x chance at N=100, ~50x at N=10,000, DP at
epsilon 0.34 cutting Recall@1 at N=10,000 by 61.8%, utility 0.7963 -> 0.7943) and
paper 2 (chest X-ray re-ID Rank-1 25.9%, trained attacker 63.7%). The script only keeps
them internally consistent: lift = recall / chance, Wilson 95% intervals, macro AUROC =
mean of the per-finding AUROCs, normalized risk = (attack - control) / (1 - control).

Run: python3 make_fixtures.py   (needs numpy and scipy; writes *.json beside it)
"""
import json
import math
import os

import numpy as np
from scipy.stats import norm

HERE = os.path.dirname(os.path.abspath(__file__))
NOTE = "hand-written test fixture (tests/data/report/make_fixtures.py); not a measurement"


def wilson(p, n, z=1.959963984540054):
    k = p * n
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return [round(centre - half, 6), round(centre + half, 6)]


def dump(name, obj):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def pool(n, kind, recall, nq, expected=None):
    row = {
        "pool_size": n, "kind": kind, "trials": 20, "recall_at_1": recall,
        "ci95_recall_at_1": wilson(recall, nq), "chance_at_1": 1 / n,
        "lift_at_1": round(recall * n, 4),
    }
    if expected is not None:
        row["expected_recall_at_1"] = expected
    return row


def expected_curve(random, full_recall, ng):
    """Exact-expectation curve over a grid of N: log-log interpolation through the random
    pools' expectations and the full database (a stand-in for the hypergeometric curve)."""
    knots = [(2, 0.75)] + [(n, r * 0.998) for n, r in random] + [(ng, full_recall)]
    xs, ys = np.log([k[0] for k in knots]), np.log([k[1] for k in knots])
    grid = [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, ng]
    return [{"pool_size": n, "expected_recall_at_1": round(float(np.exp(np.interp(np.log(n), xs, ys))), 6),
             "chance_at_1": 1 / n} for n in grid]


def subgroups(full_recall, nq, ng, scale):
    groups = [("sex", "F", 0.52, 0.92), ("sex", "M", 0.48, 1.09), ("age", "<40", 0.12, 1.31),
              ("age", "40-59", 0.31, 1.08), ("age", "60-79", 0.41, 0.93), ("age", ">=80", 0.16, 0.81),
              ("race", "Black", 0.18, 1.12), ("race", "White", 0.61, 0.97), ("race", "Asian", 0.08, 0.94),
              ("race", "unknown", 0.13, 1.02)]
    out = []
    for attribute, value, share, factor in groups:
        n = int(nq * share)
        r = round(full_recall * factor * scale, 6)
        out.append({"attribute": attribute, "value": value, "n_queries": n, "recall_at_1": r,
                    "ci95_recall_at_1": wilson(r, n), "chance_at_1": 1 / ng, "lift_at_1": round(r * ng, 4)})
    return out


def relink_direction(query, gallery, nq, ng, random, pathology, full_recall, exact, scale=1.0):
    out = {"query_view": query, "gallery_view": gallery, "n_queries": nq, "n_gallery": ng}
    random = [(n, round(r * scale, 6)) for n, r in random]
    pathology = [(n, round(r * scale, 6)) for n, r in pathology]
    full_recall = round(full_recall * scale, 6)
    out["full"] = {"recall_at_1": full_recall, "recall_at_5": round(full_recall * 4.1, 6),
                   "recall_at_10": round(full_recall * 7.3, 6), "mrr": round(full_recall * 3.2, 6),
                   "median_rank": 812.5, "chance_at_1": 1 / ng,
                   "lift_at_1": round(full_recall * ng, 4), "ci95_recall_at_1": wilson(full_recall, nq)}
    out["pools"] = [pool(n, "random", r, nq, round(r * 0.998, 6)) for n, r in random] + \
                   [dict(pool(n, "pathology_matched", r, nq), exact_match_fraction=exact[n]) for n, r in pathology]
    out["skipped_pools"] = [{"pool_size": 100000, "kind": kind, "reason": f"larger than the gallery of {ng:,} items"}
                            for kind in ["random", "pathology_matched"]]
    out["expected_recall_curve"] = expected_curve(random, full_recall, ng)
    out["subgroups"] = subgroups(full_recall, nq, ng, 1.0)
    return out


def relink_report(nq, ng, random, pathology, full_recall, attacks=True, extra=True):
    out = {"_fixture": NOTE, "audit": "relink", "query_view": "image", "gallery_view": "report",
           "split": "test", "n_queries": nq, "n_gallery": ng}
    if full_recall is not None:
        out["full"] = {"recall_at_1": full_recall, "recall_at_5": round(full_recall * 4.1, 6),
                       "recall_at_10": round(full_recall * 7.3, 6), "mrr": round(full_recall * 3.2, 6),
                       "median_rank": 812.5, "chance_at_1": 1 / ng,
                       "lift_at_1": round(full_recall * ng, 4), "ci95_recall_at_1": wilson(full_recall, nq)}
    out["pools"] = [pool(n, "random", r, nq, round(r * 0.998, 6)) for n, r in random] + \
                   [pool(n, "pathology_matched", r, nq) for n, r in pathology]
    if attacks:
        rows = []
        for name, r, extra_keys in [("cosine", 0.0049, {}), ("inverted_softmax", 0.0063, {}),
                                    ("csls", 0.0071, {}), ("procrustes", 0.0058, {"leaked_pairs": 100})]:
            control = 0.0001
            risk = (r - control) / (1 - control)
            lo, hi = wilson(r, nq)
            rows.append({"name": name, "pool_size": 10000, **extra_keys, "recall_at_1": r,
                         "ci95_recall_at_1": [lo, hi], "control_recall_at_1": control,
                         "normalized_risk": round(risk, 6),
                         "ci95_normalized_risk": [round((lo - control) / (1 - control), 6),
                                                  round((hi - control) / (1 - control), 6)],
                         "chance_at_1": 1e-4, "lift_at_1": round(r * 1e4, 4)})
        rows.append({"name": "assignment", "recall_at_1": 0.0019, "control_recall_at_1": 0.00002,
                     "normalized_risk": round((0.0019 - 0.00002) / (1 - 0.00002), 6)})
        out["strongest_attack"] = "csls"
        out["strongest_attack_pool_size"] = 10000
        out["attacks"] = rows
        out["side"] = {"source": "split train", "n_pairs": 100000, "beta_curve": []}
        out["skipped_attacks"] = [{"name": "qb_norm", "reason": "the query bank would hold fewer than 1,000 queries"},
                                  {"name": "ridge", "leaked_pairs": 100000,
                                   "reason": "more leaked pairs than side pairs (100,000)"}]
    if extra:
        # Per-record data and unknown keys: the report must ignore both.
        out["per_record"] = [{"id": "rec-SECRET-0001", "patient_id": "pat-SECRET-77", "rank": 1},
                             {"id": "rec-SECRET-0002", "patient_id": "pat-SECRET-78", "rank": 48213}]
        out["engine"] = {"block_rows": 4096, "gflops": 171.3}
    return out


nq = 43793
relink = relink_report(
    nq, nq,
    random=[(10, 0.4187), (100, 0.1503), (1000, 0.0321), (10000, 0.0049)],
    pathology=[(10, 0.3102), (100, 0.0938), (1000, 0.0189), (10000, 0.0029)],
    full_recall=0.00131)
# --direction both: the forward direction's extra keys at the top level, report -> image
# (a little stronger) under `reverse`, with its own attack comparison.
exact = {10: 0.9213, 100: 0.6127, 1000: 0.1184, 10000: 0.0011}
forward = relink_direction("image", "report", nq, nq, [(10, 0.4187), (100, 0.1503), (1000, 0.0321), (10000, 0.0049)],
                           [(10, 0.3102), (100, 0.0938), (1000, 0.0189), (10000, 0.0029)], 0.00131, exact)
for key in ["skipped_pools", "expected_recall_curve", "subgroups"]:
    relink[key] = forward[key]
for p, q in zip(relink["pools"], forward["pools"]):
    if "exact_match_fraction" in q:
        p["exact_match_fraction"] = q["exact_match_fraction"]
reverse = relink_direction("report", "image", nq, nq, [(10, 0.4187), (100, 0.1503), (1000, 0.0321), (10000, 0.0049)],
                           [(10, 0.3102), (100, 0.0938), (1000, 0.0189), (10000, 0.0029)], 0.00131,
                           {10: 0.9188, 100: 0.6091, 1000: 0.1172, 10000: 0.0012}, scale=1.12)
reverse["strongest_attack"] = "cosine"
reverse["strongest_attack_pool_size"] = 10000
reverse["attacks"] = [{"name": name, "pool_size": 10000, "recall_at_1": r, "ci95_recall_at_1": wilson(r, nq),
                       "control_recall_at_1": 0.0001, "normalized_risk": round((r - 0.0001) / 0.9999, 6),
                       "chance_at_1": 1e-4, "lift_at_1": round(r * 1e4, 4)}
                      for name, r in [("cosine", 0.0055), ("csls", 0.0052)]]
reverse["side"] = {"source": "cross_fit", "folds": 5, "n_pairs": 43793}
reverse["skipped_attacks"] = []
relink["reverse"] = reverse
dump("relink_image_report.json", relink)


def roc_points(auroc, n=60):
    a = math.sqrt(2) * norm.ppf(auroc)
    fpr = np.concatenate([[0.0], np.logspace(-4, 0, n - 1)])
    tpr = norm.cdf(a + norm.ppf(np.clip(fpr, 1e-12, 1 - 1e-12)))
    tpr[0], tpr[-1] = 0.0, 1.0
    return {"fpr": [round(float(x), 6) for x in fpr], "tpr": [round(float(y), 6) for y in tpr]}


def reid(attacker, rank1, cmc, mAP, auroc, nq=12345, ng=43792):
    out = {"_fixture": NOTE, "audit": "reid", "view": "image", "n_queries": nq, "n_gallery": ng,
           "rank_1": rank1, "ci95_rank_1": wilson(rank1, nq),
           "cmc": {str(k): v for k, v in cmc.items()},
           "map": mAP, "ci95_map": [round(mAP - 0.006, 4), round(mAP + 0.006, 4)],
           "verification_auroc": auroc, "ci95_verification_auroc": [round(auroc - 0.004, 4), round(auroc + 0.004, 4)],
           "verification_roc": roc_points(auroc)}
    if attacker:
        out["attacker"] = attacker
    out["reidentified"] = [True, False, True]  # per-record flags: must never be rendered
    return out


dump("reid_image.json", reid(None, 0.259, {1: 0.259, 5: 0.412, 10: 0.489, 20: 0.571}, 0.183, 0.842))
linear = reid("linear-metric", 0.637, {1: 0.637, 5: 0.781, 10: 0.829, 20: 0.871}, 0.512, 0.953)
linear["linear_metric"] = {"rank": 32, "side": {"source": "cross_fit", "folds": 5}}
dump("reid_image_linear_metric.json", linear)


def attr(auroc, re, nre, p, roc=False):
    out = {"auroc": auroc, "ci95_auroc": [round(auroc - 0.011, 4), round(auroc + 0.011, 4)],
           "reidentified": {"auroc": re, "ci95_auroc": [round(re - 0.017, 4), round(re + 0.017, 4)]},
           "not_reidentified": {"auroc": nre, "ci95_auroc": [round(nre - 0.014, 4), round(nre + 0.014, 4)]},
           "p_value_difference": p}
    if roc:
        out["roc"] = roc_points(auroc, 40)
    return out


dump("attributes_image.json", {
    "_fixture": NOTE, "audit": "attributes", "view": "image", "age_threshold": 65,
    "side": {"source": "cross_fit", "folds": 5},
    "targets": {"sex": attr(0.8214, 0.8583, 0.7941, 0.00042, roc=True),
                "age": attr(0.7738, 0.7912, 0.7621, 0.083, roc=True),
                "race": attr(0.7126, 0.7304, 0.7019, 0.21)}})

findings = {"No Finding": 0.8612, "Enlarged Cardiomediastinum": 0.6934, "Cardiomegaly": 0.8127,
            "Lung Opacity": 0.7541, "Lung Lesion": 0.7012, "Edema": 0.8735, "Consolidation": 0.7488,
            "Pneumonia": 0.7059, "Atelectasis": 0.7713, "Pneumothorax": 0.8244,
            "Pleural Effusion": 0.8876, "Pleural Other": 0.7790, "Fracture": 0.7201, "Support Devices": 0.8998}
# Shift so the macro AUROC is paper 1's 0.7963 (non-private image-side utility).
shift = 0.7963 - float(np.mean(list(findings.values())))
findings = {k: round(v + shift, 4) for k, v in findings.items()}
macro = round(float(np.mean(list(findings.values()))), 6)
dump("utility_image.json", {
    "_fixture": NOTE, "audit": "utility", "view": "image",
    "macro_auroc": macro,
    "ci95_macro_auroc": [round(macro - 0.0072, 4), round(macro + 0.0072, 4)],
    "per_finding": findings, "skipped_findings": [], "side": {"source": "split train"}})


def mit_cohort(r100, r10k, base10k, nq):
    return {"n_queries": nq, "n_gallery": nq,
            "pools": [pool(100, "random", r100, nq), pool(10000, "random", r10k, nq)],
            "relative_reduction": round(1 - r10k / base10k, 6)}


points = []
base = {"members": 0.0061, "held_out": 0.0049, "external": 0.0035}
for eps, util, mem, held, ext in [(None, 0.7963, 0.0061, 0.0049, 0.0035), (8, 0.7958, 0.0042, 0.0036, 0.0027),
                                  (3, 0.7955, 0.0031, 0.0027, 0.0021), (1, 0.7949, 0.0024, 0.0022, 0.0016),
                                  (0.34, 0.7943, 0.0021, 0.00187, 0.0013)]:
    points.append({"epsilon": eps, "delta": 6e-6 if eps is not None else None,
                   "relink": {"members": mit_cohort(mem * 28, mem, base["members"], 100000),
                              "held_out": mit_cohort(held * 30, held, base["held_out"], 43793),
                              "external": mit_cohort(ext * 31, ext, base["external"], 29296)},
                   "utility": {"macro_auroc": util}})
dump("mitigate.json", {"_fixture": NOTE, "audit": "mitigate", "points": points})

dump("cohort.json", {"synthetic": True, "n_records": 173089, "n_patients": 65379, "n_studies": 121330,
                     "splits": [{"name": "train", "n_records": 100000}, {"name": "test", "n_records": 43793},
                                {"name": "external", "n_records": 29296}],
                     "views": [{"name": "image", "n": 173089, "dim": 512}, {"name": "report", "n": 173089, "dim": 512}],
                     "has_findings": True, "demographics": ["sex", "age", "race"]})
