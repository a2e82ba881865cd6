"""The synthetic set is learnable and needs time: motions show only across frames, a single
frame draws a figure's limbs from the same distribution whatever it does, and the simulated
person detector has the promised quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ava_detect.structures import box_iou
from ava_detect.synthetic import (
    JUMP,
    LIE,
    RUN,
    SIT,
    STAND,
    WALK,
    WAVE,
    figure_box,
    figure_primitives,
    plan_video,
    predict_boxes,
    rasterize_figure,
)

FPS = 30


@pytest.fixture(scope="module")
def figures():
    """Figure tracks of 150 planned (not rendered) 20 s videos at 320x240."""
    rng = np.random.default_rng(1234)
    out = []
    for i in range(150):
        plan = plan_video(np.random.default_rng(rng.integers(2**32)), f"v{i}", seconds=20, width=320, height=240)
        out.extend(plan.figures)
    return out


def _keyframe_samples(figures):
    """One row per figure per keyframe (whole seconds 2..18): labels, what the renderer draws
    in that single frame, and motion over +-0.5 s."""
    rows = []
    for fig in figures:
        for second in range(2, 19):
            f = second * FPS
            labels = fig.labels_at(f)
            prims = figure_primitives(fig, f)
            face = int(fig.facing[f])
            # Upright poses: the waving arm is the last shape (shoulder -> hand), the legs the
            # first two (hip -> foot); angles and offsets are mirrored to face right.
            _, shoulder, hand, _ = prims[-1]
            arm = np.rad2deg(np.arctan2((hand[0] - shoulder[0]) * face, hand[1] - shoulder[1]))
            legs = (prims[0][2][0] - prims[1][2][0]) * face / fig.height
            rows.append(dict(
                pose=labels[0],
                walk=WALK in labels, run=RUN in labels, jump=JUMP in labels, wave=WAVE in labels,
                arm=arm,
                legs=legs,
                # Speed (heights per second) and arm travel over +-0.5 s: what a clip sees.
                speed=np.median(np.abs(np.diff(fig.x[f - 15:f + 16]))) * FPS / fig.height,
                arm_range=np.ptp(np.sin(fig.wave_phase[f - 15:f + 16])) * fig.arm_swing,
                lift_range=np.ptp(fig.lift[f - 15:f + 16]) / fig.height,
                same_labels=fig.labels_at(f - 15) == labels == fig.labels_at(f + 15),
            ))
    return pd.DataFrame(rows)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def test_all_classes_occur_with_reasonable_balance(figures):
    df = _keyframe_samples(figures)
    assert len(df) > 5000
    share = {
        "stand": (df["pose"] == STAND).mean(), "sit": (df["pose"] == SIT).mean(), "lie": (df["pose"] == LIE).mean(),
        "walk": df["walk"].mean(), "run": df["run"].mean(), "jump": df["jump"].mean(), "wave": df["wave"].mean(),
    }
    for name, value in share.items():
        assert 0.08 < value < 0.7, (name, value)
    # Labels change along a track, and each keyframe's labels hold for at least 0.5 s around it.
    changes = sum(len({labels for _, _, labels in fig.segments}) > 1 for fig in figures)
    assert changes > 0.6 * len(figures)
    assert df["same_labels"].mean() > 0.85


def test_a_single_frame_does_not_tell_the_motions_apart(figures):
    """At a keyframe, the arm angle of wavers and non-wavers, and the leg spread of walkers,
    runners and standing figures, have the same distribution: the KS distance is small (idle
    limbs repeat one value for a whole segment, so the leg samples are few and the bound loose;
    a design that keeps the arm down when idle gives 1, feet together 0.5)."""
    df = _keyframe_samples(figures)
    upright = df[df["pose"] != LIE]
    assert _ks(upright.loc[upright["wave"], "arm"].to_numpy(), upright.loc[~upright["wave"], "arm"].to_numpy()) < 0.12
    stand = df[df["pose"] == STAND]
    still = stand[~stand["walk"] & ~stand["run"]]["legs"].to_numpy()
    walk = stand[stand["walk"]]["legs"].to_numpy()
    run = stand[stand["run"]]["legs"].to_numpy()
    assert _ks(walk, run) < 0.2 and _ks(walk, still) < 0.2 and _ks(run, still) < 0.2


def test_motions_show_across_frames(figures):
    df = _keyframe_samples(figures)
    steady = df[df["same_labels"]]
    walk = steady.loc[steady["walk"], "speed"]
    run = steady.loc[steady["run"], "speed"]
    still = steady.loc[~steady["walk"] & ~steady["run"], "speed"]
    # A figure moves 0.35-0.6 of its height per second walking, 1.1-1.6 running, else not at all.
    assert len(walk) > 300 and len(run) > 300
    assert (still == 0).all()
    assert walk.between(0.35 - 1e-9, 0.6 + 1e-9).all()
    assert run.between(1.1 - 1e-9, 1.6 + 1e-9).all()
    # A waving arm sweeps; an idle one is still. A jumping figure bounces; others stay down.
    assert (steady.loc[steady["wave"], "arm_range"] > np.deg2rad(25)).all()
    assert (steady.loc[~steady["wave"], "arm_range"] == 0).all()
    # (bounces of 0.15-0.25 heights; sampling at 30 fps may miss the top by a few percent)
    assert (steady.loc[steady["jump"], "lift_range"] > 0.13).all()
    assert (steady.loc[~steady["jump"], "lift_range"] == 0).all()


def test_poses_differ_in_shape(figures):
    """Standing figures are tall, lying ones wide, sitting ones in between (box height / width)."""
    ratios = {STAND: [], SIT: [], LIE: []}
    for fig in figures[:60]:
        for f in range(60, 600, 90):
            parts, top, left = rasterize_figure(fig, f, 320, 240)
            x1, y1, x2, y2 = figure_box(parts, top, left)
            ratios[int(fig.pose[f])].append((y2 - y1) / (x2 - x1))
    assert min(ratios[STAND]) > 1.6
    assert max(ratios[LIE]) < 0.6
    assert 0.9 < np.median(ratios[SIT]) < 2.2 and np.median(ratios[SIT]) < np.median(ratios[STAND])


def test_predicted_boxes_quality():
    rng = np.random.default_rng(7)
    n = 1800
    w, h = rng.uniform(0.1, 0.3, n), rng.uniform(0.2, 0.45, n)
    x1, y1 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    gt = pd.DataFrame(dict(video_id="v", second=902 + np.arange(n) // 3, x1=x1, y1=y1, x2=x1 + w, y2=y1 + h))
    pred = predict_boxes(np.random.default_rng(11), gt, 320, 240)
    again = predict_boxes(np.random.default_rng(11), gt, 320, 240)
    pd.testing.assert_frame_equal(pred, again)
    assert pred["second"].isin(gt["second"]).all()
    assert (pred[["x1", "y1"]].to_numpy() >= 0).all() and (pred[["x2", "y2"]].to_numpy() <= 1).all()
    assert (pred["x2"] > pred["x1"]).all() and (pred["y2"] > pred["y1"]).all()

    pred_at = dict(tuple(pred.groupby("second")))
    empty = pred.iloc[:0]
    best_iou, best_score = [], []
    for second, g in gt.groupby("second"):
        p = pred_at.get(second, empty)
        iou = box_iou(g[["x1", "y1", "x2", "y2"]].to_numpy(), p[["x1", "y1", "x2", "y2"]].to_numpy())
        if iou.size:
            j = iou.argmax(axis=1)
            best_iou.extend(iou[np.arange(len(g)), j])
            best_score.extend(p["score"].to_numpy()[j])
        else:
            best_iou.extend([0.0] * len(g))
            best_score.extend([0.0] * len(g))
    best_iou, best_score = np.array(best_iou), np.array(best_score)
    found = best_iou > 0.5
    missed = 1 - found.mean()
    assert 0.02 < missed < 0.09  # MISS_RATE = 0.05
    assert (best_iou[found] > 0.7).mean() > 0.85
    assert (best_score[found] >= 0.8).mean() > 0.9
    # False positives: boxes that match no person; some of them confident.
    gt_at = dict(tuple(gt.groupby("second")))
    fp_scores = []
    for second, p in pred_at.items():
        g = gt_at[second]
        iou = box_iou(p[["x1", "y1", "x2", "y2"]].to_numpy(), g[["x1", "y1", "x2", "y2"]].to_numpy())
        fp_scores.extend(p["score"].to_numpy()[iou.max(axis=1) <= 0.5])
    fp_scores = np.array(fp_scores)
    assert 0.15 * n / 3 < len(fp_scores) < 0.5 * n / 3  # about 0.3 per keyframe
    assert 0.1 < (fp_scores >= 0.8).mean() < 0.5
