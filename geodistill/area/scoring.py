"""How far ``refine``'s positions are from the truth of a synthetic area, against how far its GPS priors were.

``score_refined(truth_rows, records)`` takes the rows of a synthetic area's ``ground_truth.csv``
(:func:`geodistill.area.synthetic.read_ground_truth`) and ``refine``'s output records (``name``, ``status``,
``refined_lat``/``refined_lon``, ``prior_lat``/``prior_lon``) and returns, over the panoramas refine localized, the
refined and the prior errors (geodesic metres): mean, median, recall@1/3/5 m, and the share of panoramas whose
refined position is closer to the truth than their prior. Panoramas refine did not localize are counted apart.
"""

from __future__ import annotations

import statistics

from geodistill.area.utm_orthophoto import ground_distance_m

RECALL_RADII_M = (1, 3, 5)


def error_summary(errors: list[float]) -> dict:
    """n, mean, median and recall@1/3/5 m of a list of errors in metres (NaN statistics for an empty list)."""
    if not errors:
        return {"n": 0, "mean_m": float("nan"), "median_m": float("nan"),
                **{f"recall_{r}m": float("nan") for r in RECALL_RADII_M}}
    return {"n": len(errors), "mean_m": statistics.fmean(errors), "median_m": statistics.median(errors),
            **{f"recall_{r}m": sum(e <= r for e in errors) / len(errors) for r in RECALL_RADII_M}}


def score_refined(truth_rows: list[dict], records: list[dict]) -> dict:
    """``{"refined": summary, "prior": summary, "improved_share", "per_panorama": [...], "not_refined": [names]}``."""
    truth = {row["name"]: row for row in truth_rows}
    per_panorama, not_refined = [], []
    for record in records:
        row = truth.get(record["name"])
        if row is None:
            continue
        if record.get("status") != "refined" or record.get("refined_lat") is None:
            not_refined.append(record["name"])
            continue
        refined = float(ground_distance_m(row["true_lat"], row["true_lon"], record["refined_lat"], record["refined_lon"]))
        prior = float(ground_distance_m(row["true_lat"], row["true_lon"], row["prior_lat"], row["prior_lon"]))
        per_panorama.append({"name": record["name"], "refined_error_m": refined, "prior_error_m": prior})
    missing = sorted(set(truth) - {record["name"] for record in records})
    refined_errors = [p["refined_error_m"] for p in per_panorama]
    improved = sum(p["refined_error_m"] < p["prior_error_m"] for p in per_panorama)
    return {"refined": error_summary(refined_errors), "prior": error_summary([p["prior_error_m"] for p in per_panorama]),
            "improved_share": improved / len(per_panorama) if per_panorama else float("nan"),
            "per_panorama": per_panorama, "not_refined": sorted(not_refined) + missing}
