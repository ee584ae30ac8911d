"""Issue 17 pre-study: can a per-lesion classifier remove false lesions? Offline, on saved probabilities.

Not course code yet (no tests; issue 17 turns it into ``course_utils`` code with tests). Reads the folder that
``benchmarks/bench_mri.py --save-probs DIR`` wrote (``<patient>-seed<seed>.npz``: out-of-fold test probabilities
on the native grid and the fold's threshold) and open_ms_data from the data root::

    COURSE_DATA_DIR=../shared/data python benchmarks/studies/lesion_classifier_prestudy.py DIR [--threshold T]

For each seed and held-out patient T: candidates are the 26-connected components of ``prob >= threshold`` (the
fold's threshold, or ``--threshold``). Nine features per candidate (log size, mean and maximum probability, mean
depth from the brain's edge and the same capped at 10 mm, mean z-scored FLAIR and T1 inside it and their contrast to
a 2-voxel shell). A logistic regression is trained on the candidates of the two other patients' out-of-fold maps, its
cut-off chosen for their best mean lesion F1, then applied to T. T's labels only score. Caveat: the networks behind
the other patients' out-of-fold maps were trained with T (not strictly nested).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_utils.lessons.lesson04.pipeline import native_image, prepare_open_ms
from course_utils.metrics.lesions import dice, lesion_detection

S26 = np.ones((3, 3, 3))
PATIENTS = ("patient07", "patient19", "patient26")


def zscored(case) -> dict[str, np.ndarray]:
    """FLAIR and T1 on the native grid, clipped to the 0.5-99.5 percentiles and z-scored inside the brain."""
    out, m = {}, case.native_mask
    for mod in ("FLAIR", "T1"):
        x = native_image(case, mod).astype(np.float32)
        lo, hi = np.percentile(x[m], [0.5, 99.5])
        x = np.clip(x, lo, hi)
        out[mod] = np.where(m, (x - x[m].mean()) / x[m].std(), 0)
    return out


def candidates(prob: np.ndarray, case, images: dict, threshold: float):
    """(labels, features (n, 9), is_real (n,)) of the components of ``prob >= threshold`` inside the brain."""
    labels, n = ndimage.label((prob >= threshold) & case.native_mask, S26)
    if n == 0:
        return labels, np.zeros((0, 9)), np.zeros(0, bool)
    idx = np.arange(1, n + 1)
    depth = ndimage.mean(case.native_depth_mm(), labels, idx)
    shell = ndimage.maximum_filter(labels, size=5)
    shell = np.where((labels == 0) & case.native_mask, shell, 0)
    feats = [
        np.log(ndimage.sum(np.ones_like(prob), labels, idx)),
        ndimage.mean(prob, labels, idx),
        ndimage.maximum(prob, labels, idx),
        depth,
        np.minimum(depth, 10),
    ]
    for mod in ("FLAIR", "T1"):
        inside = ndimage.mean(images[mod], labels, idx)
        feats += [inside, inside - np.nan_to_num(ndimage.mean(images[mod], shell, idx))]
    real = ndimage.maximum(case.native_label > 0, labels, idx) > 0
    return labels, np.stack(feats, 1), real


def score(pred: np.ndarray, case) -> dict[str, float]:
    """Dice and lesion-wise sensitivity, precision and F1 (26-connectivity) against the native label."""
    truth = case.native_label > 0
    found = lesion_detection(pred, truth)
    return {"dice": dice(pred, truth), **{k: found[k] for k in ("sensitivity", "precision", "f1", "n_pred")}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probs", help="the folder bench_mri.py --save-probs wrote")
    parser.add_argument("--threshold", type=float, default=None, help="candidate threshold (default: the fold's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    cases = {c.name: c for c in prepare_open_ms(1.0, ("FLAIR", "T1"), patients=PATIENTS)}
    images = {name: zscored(c) for name, c in cases.items()}
    rows = []
    for seed in args.seeds:
        data = {p: np.load(f"{args.probs}/{p}-seed{seed}.npz") for p in PATIENTS}
        for test in PATIENTS:
            thr = args.threshold if args.threshold is not None else float(data[test]["threshold"])
            train = {p: candidates(data[p]["test"].astype(np.float32), cases[p], images[p], thr) for p in PATIENTS}
            x = np.concatenate([train[p][1] for p in PATIENTS if p != test])
            y = np.concatenate([train[p][2] for p in PATIENTS if p != test])
            clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000)).fit(x, y)

            def kept(labels, feats, cut, clf=clf):
                return np.concatenate([[False], clf.predict_proba(feats)[:, 1] >= cut])[labels]

            cuts = np.arange(0.05, 0.96, 0.05)
            inner = [
                np.mean([score(kept(*train[p][:2], cut), cases[p])["f1"] for p in PATIENTS if p != test])
                for cut in cuts
            ]
            cut = float(cuts[int(np.argmax(inner))])
            prob = data[test]["test"].astype(np.float32)
            before = score((prob >= thr) & cases[test].native_mask, cases[test])
            after = score(kept(*train[test][:2], cut), cases[test])
            rows.append((before, after))
            print(
                f"seed {seed} {test}: threshold {thr:.2f}, cut {cut:.2f}; before "
                + ", ".join(f"{k} {v:.3f}" for k, v in before.items())
                + "; after "
                + ", ".join(f"{k} {v:.3f}" for k, v in after.items()),
                flush=True,
            )
    for key in ("dice", "sensitivity", "precision", "f1"):
        before, after = np.mean([b[key] for b, _ in rows]), np.mean([a[key] for _, a in rows])
        print(f"mean {key}: before {before:.3f}, after {after:.3f}")


if __name__ == "__main__":
    sys.exit(main())
