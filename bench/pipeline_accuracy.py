"""Accuracy of everything around SAM 2, measured with the oracle segmenter and detector.

On semi-synthetic sequences (real objects over real video, exact ground truth), prints:
- J, F and J&F of the pipeline at keyframe intervals 1, 2, 5, 10 on moderate motion (the
  oracle is perfect on keyframes, so the loss against interval 1 is what propagation costs);
- drift detection recall (injected drifts noticed within one keyframe interval) and the
  false-alarm rate (drift reported on clean object-keyframes);
- mean frames from an injected drift until the object's J is back at 0.5 and stays there for
  10 frames, with re-anchoring on and off (a drift shows on the next keyframe, so this
  includes the detection delay).

    python bench/pipeline_accuracy.py [--frames 60] [--trials 12]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig, TrackingPipeline
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.metrics import evaluate_sequence, recovery_frames
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter

HOLD = 10  # a recovery counts when J stays >= 0.5 for this many frames


def run(sequence, segmenter, detector, config):
    """Prompt every object by its box on frame 0, track the sequence, return the results."""
    pipeline = TrackingPipeline(segmenter, detector, config)
    results = []
    for i, frame in enumerate(sequence.frames):
        results.append(pipeline.process(frame, stamp=i))
        if i == 0:
            for gt_id, t in sequence.truth[0].items():
                pipeline.add_object(box=t.box, obj_id=gt_id)
    return pipeline, results


def predictions(results):
    """Per-frame {obj_id: mask}."""
    return [{o.obj_id: o.mask for o in r.objects} for r in results]


def score(sequence, results, ids):
    """Score from frame 1 on: frame 0's result comes before the prompts made on it."""
    return evaluate_sequence(sequence.truth[1:], predictions(results[1:]), ids)


def interval_table(sequence) -> None:
    """J and F per keyframe interval with a perfect segmenter."""
    ids = {g: g for g in sequence.truth[0]}
    print(f'{"interval":>8} {"keyframes":>10} {"J":>7} {"F":>7} {"J&F":>7} {"J loss":>8}')
    base = None
    for interval in (1, 2, 5, 10):
        config = PipelineConfig(keyframes=KeyframeConfig(interval=interval))
        pipeline, results = run(sequence, OracleSegmenter(sequence), None, config)
        scores = score(sequence, results, ids)
        base = scores.j if base is None else base
        print(
            f'{interval:>8} {pipeline.stats.keyframes:>10} {scores.j:>7.3f} {scores.f:>7.3f} '
            f'{scores.j_and_f:>7.3f} {100 * (base - scores.j):>7.2f}pt'
        )


def drift_table(sequence, trials: int, interval: int = 5) -> None:
    """Recall, false alarms and recovery time on injected drifts."""
    rng = np.random.default_rng(7)
    gt_ids = list(sequence.truth[0])
    frames = len(sequence.frames)
    config = PipelineConfig(keyframes=KeyframeConfig(interval=interval))
    detected = 0
    recovery = {True: [], False: []}
    never = {True: 0, False: 0}
    for trial in range(trials):
        event = DriftEvent(
            frame_index=int(rng.integers(8, frames - 3 * interval)),
            gt_id=int(rng.choice(gt_ids)),
            kind=('background', 'other_object')[trial % 2],
        )
        for reanchoring in (True, False):
            config.reanchoring = reanchoring
            _, results = run(
                sequence,
                OracleSegmenter(sequence, (event,)),
                OracleDetector(sequence, box_noise_px=2.0),
                config,
            )
            if reanchoring:
                window = results[event.frame_index : event.frame_index + interval + 1]
                detected += any(f'drift {event.gt_id} ' in e for r in window for e in r.events)
            scores = score(sequence, results, {event.gt_id: event.gt_id})
            j = [None] + scores.objects[event.gt_id].j_per_frame  # index = frame number
            back = recovery_frames(j, event.frame_index, threshold=0.5, hold=HOLD)
            if back is None:
                never[reanchoring] += 1
            else:
                recovery[reanchoring].append(back)
    # False alarms: clean runs (no injection), drift reports per object-keyframe.
    config.reanchoring = True
    pipeline, results = run(
        sequence, OracleSegmenter(sequence), OracleDetector(sequence, box_noise_px=2.0), config
    )
    checks = pipeline.stats.keyframes * len(gt_ids)
    alarms = pipeline.stats.drift_detections
    print(
        f'drift detection recall: {detected}/{trials} = {detected / trials:.2f} '
        f'(within one interval of {interval} frames)'
    )
    print(
        f'false alarms on a clean run: {alarms} in {checks} object-keyframes = '
        f'{alarms / max(checks, 1):.3f}'
    )
    for reanchoring in (True, False):
        values = recovery[reanchoring]
        mean = f'{statistics.mean(values):.1f}' if values else 'n/a'
        print(
            f'frames from injection to recovery (J >= 0.5 for {HOLD} frames), re-anchoring '
            f'{"on " if reanchoring else "off"}: mean {mean} over {len(values)} recovered, '
            f'{never[reanchoring]} never recovered'
        )


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--trials', type=int, default=12)
    args = parser.parse_args()
    sequence = synthetic.scenario('moderate_motion', args.frames)
    print(
        f'moderate motion: {args.frames} frames of 640x480, {len(sequence.truth[0])} objects, '
        f'source {sequence.source}\n'
    )
    print('oracle segmenter (perfect on keyframes), flow in between:')
    interval_table(sequence)
    print()
    drift_table(sequence, args.trials)


if __name__ == '__main__':
    main()
