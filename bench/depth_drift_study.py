"""Study whether depth tells an occlusion from a drift better than optical flow alone.

The drift monitor decides on each keyframe, per object, CONSISTENT, DRIFT or OCCLUDED from
SAM 2's mask, its scores and the flow-carried mask. Depth adds a cue: an occluder in front
of an object is nearer than the object was; a mask that leaked onto the background is
farther. This script runs the pipeline with the oracle segmenter (perfect on keyframes,
drifts injected on request) over semi-synthetic scenes with rendered, sensor-like depth,
records every keyframe decision, and re-decides it with a depth rule that sees only what the
node would see (the masks and the depth image, never the ground truth):

- reference: the median depth under the object's mask at its last CONSISTENT keyframe;
- "not visible, but flow still tracks it" (today: DRIFT): if the flow region is now nearer
  than the reference, something came in front: OCCLUDED;
- DRIFT only because SAM 2's mask disagrees with the flow, but the mask lies at the
  reference distance: the object itself (re-emerging from behind an occluder, or the flow
  went stale): CONSISTENT;
- CONSISTENT, but SAM 2's mask is farther than the reference: it leaked onto the background:
  DRIFT.

A decision is right when it matches the ground truth of that frame: DRIFT while an injected
drift is active, OCCLUDED while so little of the object shows that the oracle reports it not
visible (as SAM 2 would), CONSISTENT otherwise. Prints the wrong decisions of both, per scene.

It hooks the keyframe stage's private `_judge` to see each object's masks: a study, not a
tool.

    python bench/depth_drift_study.py [--frames 60]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from sam2_ros.core.drift import Verdict
from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter
from sam2_ros.evaluation.synthetic_depth import DepthNoise, DepthScene, render_depth

NOISE = DepthNoise(sigma_at_1m=0.002, flying=0.5, edge_px=2, quantisation_m=0.001, holes=0.1)


def median_depth(depth: np.ndarray, mask: np.ndarray) -> float | None:
    """Median valid depth under a mask, or None."""
    values = depth[mask]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size >= 20 else None


def tolerance(reference: float) -> float:
    """Depth change that counts: 3 cm plus 5 % (noise grows with distance)."""
    return 0.03 + 0.05 * reference


def record(sequence, segmenter, detector, interval: int):
    """Run the pipeline; return per keyframe decision (frame, obj, verdict, reasons, masks)."""
    pipeline = TrackingPipeline(
        segmenter, detector, PipelineConfig(keyframes=KeyframeConfig(interval=interval))
    )
    decisions, frame = [], {'index': 0}
    judge = pipeline.stage._judge

    def recording_judge(track, out, flow, drifting, events):
        before = len(events), pipeline.stats.drift_detections
        lost_before = track.state.name
        judge(track, out, flow, drifting, events)
        if lost_before == 'LOST':
            return
        verdict = (
            Verdict.DRIFT
            if track in drifting
            else Verdict.OCCLUDED
            if track.state.name == 'LOST'
            else Verdict.CONSISTENT
        )
        reasons = ' '.join(events[before[0] :])
        decisions.append(
            (
                frame['index'],
                out.obj_id,
                verdict,
                reasons,
                out.mask,
                None if flow is None else flow.mask,
                segmenter.drifted(out.obj_id),
            )
        )

    pipeline.stage._judge = recording_judge
    for i, image in enumerate(sequence.frames):
        frame['index'] = i
        pipeline.process(image, stamp=i)
        if i == 0:
            for gt_id, t in sequence.truth[0].items():
                if t.box is not None:
                    pipeline.add_object(box=t.box, obj_id=gt_id)
    return decisions


def with_depth(decisions, depth_frames):
    """Re-decide each keyframe decision with the depth rule; return the new verdicts."""
    reference: dict[int, float] = {}
    verdicts = []
    for index, obj_id, verdict, reasons, sam_mask, flow_mask, _ in decisions:
        depth = depth_frames[index]
        ref = reference.get(obj_id)
        new = verdict
        sam_depth = median_depth(depth, sam_mask) if sam_mask.any() else None
        if verdict == Verdict.DRIFT and 'not_visible' in reasons and flow_mask is not None:
            flow_depth = median_depth(depth, flow_mask)
            if ref is not None and flow_depth is not None and flow_depth < ref - tolerance(ref):
                new = Verdict.OCCLUDED
        elif verdict == Verdict.DRIFT and reasons.endswith('(low_iou_with_flow)'):
            # SAM 2 disagrees with the flow, but its mask lies at the object's distance: the
            # object itself (re-emerging, or the flow went stale), not background or occluder.
            if ref is not None and sam_depth is not None and abs(sam_depth - ref) < tolerance(ref):
                new = Verdict.CONSISTENT
        elif verdict == Verdict.CONSISTENT and ref is not None and sam_depth is not None:
            if sam_depth > ref + tolerance(ref):
                new = Verdict.DRIFT
        if new == Verdict.CONSISTENT and sam_depth is not None:
            reference[obj_id] = sam_depth
        verdicts.append(new)
    return verdicts


def truth_verdict(sequence, index: int, obj_id: int, drifted: bool, hidden: float) -> Verdict:
    """Return what a perfect monitor would say (`hidden`: the oracle's visibility floor)."""
    if drifted:
        return Verdict.DRIFT
    truth = sequence.truth[index].get(obj_id)
    if truth is None or truth.box is None or truth.visible_fraction <= hidden:
        return Verdict.OCCLUDED
    return Verdict.CONSISTENT


def study(
    name: str, sequence, events=(), interval: int = 5, verbose: bool = False, scene=None
) -> tuple[int, int, int]:
    """Print and return (decisions, wrong today, wrong with depth) for one scene."""
    depth = render_depth(sequence, scene, noise=NOISE, seed=1).depth
    segmenter = OracleSegmenter(sequence, tuple(events))
    decisions = record(sequence, segmenter, OracleDetector(sequence, box_noise_px=2.0), interval)
    depth_verdicts = with_depth(decisions, depth)
    wrong_today, wrong_depth = Counter(), Counter()
    for decision, new in zip(decisions, depth_verdicts, strict=True):
        index, obj_id, verdict, _, _, _, drifted = decision
        want = truth_verdict(sequence, index, obj_id, drifted, segmenter.min_visible_fraction)
        if verbose and (verdict != want or new != want):
            truth = sequence.truth[index].get(obj_id)
            print(
                f'  frame {index} object {obj_id}: today {verdict.name}, depth {new.name}, '
                f'truth {want.name} (visible {truth.visible_fraction:.2f}) {decision[3]}'
            )
        if verdict != want:
            wrong_today[f'{verdict.name} for {want.name}'] += 1
        if new != want:
            wrong_depth[f'{new.name} for {want.name}'] += 1
    today, with_d = sum(wrong_today.values()), sum(wrong_depth.values())
    print(
        f'{name:<34} {len(decisions):>5} decisions, wrong today {today:>3} '
        f'{dict(wrong_today) or ""}, with depth {with_d:>3} {dict(wrong_depth) or ""}'
    )
    return len(decisions), today, with_d


def main() -> None:
    """Run the scenes and print the totals."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--verbose', action='store_true', help='print each wrong decision')
    args = parser.parse_args()
    n = args.frames
    scenes = [
        ('occlusion (bar in front)', synthetic.scenario('occlusion', n), ()),
        ('crossing (object in front)', synthetic.scenario('crossing', max(24, n)), ()),
        ('exit and re-entry', synthetic.scenario('exit_reentry', n), ()),
    ]
    motion = synthetic.scenario('moderate_motion', n)
    rng = np.random.default_rng(7)
    for trial in range(6):
        kind = ('background', 'other_object')[trial % 2]
        event = DriftEvent(int(rng.integers(8, n - 15)), int(rng.choice([1, 2, 3])), kind)
        scenes.append((f'moderate motion, drift to {kind}', motion, (event,)))
    totals = np.zeros(3, int)
    for name, sequence, events in scenes:
        totals += study(name, sequence, events, verbose=args.verbose)
    # The rule's blind spot: objects side by side at one distance (a table top).
    same = DepthScene(object_distances_m=(1.2, 1.2, 1.2))
    for _ in range(4):
        event = DriftEvent(
            int(rng.integers(8, n - 15)), int(rng.choice([1, 2, 3])), 'other_object'
        )
        name = 'moderate motion, all at 1.2 m, drift to other_object'
        totals += study(name, motion, (event,), verbose=args.verbose, scene=same)
    print(f'total: {totals[0]} decisions, wrong today {totals[1]}, with depth {totals[2]}')


if __name__ == '__main__':
    main()
