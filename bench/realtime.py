"""Real time with SAM 2 off the frame path: sync and async side by side, in one run.

Part 1, the node at a camera's rate. One ground-truth bag per frame rate (moderate motion,
640x480, 3 objects boxed on their first frame) is replayed at its recorded rate
(`sam2_replay --rate 1`) through the real `sam2_tracker_node` process, once per keyframe mode,
the two modes one after the other for each setting (so load on the machine hits both alike).
Untrained SAM 2.1 tiny (say so), no detector. Printed per setting: frames answered out of
published and latency p50/p95 (publication to answer, milliseconds); targets in async:
>= 99 % answered and p95 <= 50 ms.

Part 2, what the latency costs in accuracy, with the oracle segmenter (perfect on keyframes):
J on moderate motion and on occlusion in sync (d = 0) and in fixed_delay with d = 2, 5, 10
frames, plus drift recall and false alarms; target: at most 2 J points lost at d = 5.

    python bench/realtime.py [--sizes 256 1024] [--fps 10 30] [--seconds 5] [--skip-node]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile

import numpy as np
from pipeline_accuracy import run, score

from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.pipeline import PipelineConfig
from sam2_ros.evaluation import synthetic
from sam2_ros.evaluation.oracles import DriftEvent, OracleDetector, OracleSegmenter

DELAYS = (2, 5, 10)


# --------------------------------------------------------------------------- part 1: the node


def make_bag(directory: Path, fps: float, seconds: float) -> tuple[Path, Path]:
    """Write the moderate-motion bag at `fps` and its prompt script; return both paths."""
    from sam2_ros.tools.make_bag import main as make_bag_main

    bag, script = directory / f'scene_{fps:g}fps', directory / f'prompts_{fps:g}fps.yaml'
    frames = max(8, round(fps * seconds))
    arguments = [str(bag), '--scenario', 'moderate_motion', '--frames', str(frames)]
    arguments += ['--width', '640', '--height', '480', '--fps', str(fps)]
    arguments += ['--prompt-script', str(script)]
    if make_bag_main(arguments) != 0:
        sys.exit('bench: could not write the bag')
    return bag, script


def replay_once(
    bag: Path, script: Path | None, mode: str, size: int
) -> tuple[int, int, list[float]]:
    """Run the node in `mode` and replay the bag at its rate; (answered, published, latencies).

    Without a script nothing is tracked: what is left is image transport and the node itself.
    """
    from sam2_ros.ros.names import READY_MESSAGE
    from sam2_ros.ros.node_process import NodeProcess, installed_executable
    from sam2_ros.tools.prompt_script import load_prompt_script
    from sam2_ros.tools.replay import Replayer, ReplayOptions

    parameters = {
        'untrained_models': 'true',
        'detector_model': "''",
        'sam2_image_size': size,
        'device': 'cpu',
        'image_qos_reliability': 'reliable',
        'image_qos_depth': 10,
        'use_sim_time': 'true',
        'keyframe_mode': mode,
    }
    command = [installed_executable('sam2_tracker_node'), '--ros-args']
    for name, value in parameters.items():
        command += ['-p', f'{name}:={value}']
    command += ['-r', 'image:=/camera/image_raw', '-r', 'camera_info:=/camera/camera_info']
    node = NodeProcess(command)
    try:
        node.wait_for(READY_MESSAGE, timeout=180)
        prompts = load_prompt_script(script) if script is not None else None
        options = ReplayOptions(bag=bag, rate=1.0, script=prompts)
        result = Replayer(options).run()
    finally:
        node.interrupt()
    return len(result.answers), len(result.stamps_ns), list(result.latency_ms.values())


def node_table(sizes, rates, seconds: float) -> None:
    """Print frames answered and latency for sync and async, side by side."""
    print('Part 1: the node at the bag rate (untrained SAM 2.1 tiny: timings are honest, masks')
    print('are not; 640x480, 3 objects, no detector)')
    print('("no objects": the same bag without prompts, so no flow and no SAM 2: the floor set')
    print('by image transport and the node itself)')
    header = f'{"size":>5} {"fps":>4} {"mode":>10} {"answered":>12} {"p50 ms":>8} {"p95 ms":>8}'
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for fps in rates:
            bag, script = make_bag(Path(tmp), fps, seconds)
            runs = [(sizes[0], 'no objects', None)]
            runs += [(size, mode, script) for size in sizes for mode in ('sync', 'async')]
            for size, mode, prompts in runs:
                node_mode = 'async' if prompts is None else mode
                answered, published, latency = replay_once(bag, prompts, node_mode, size)
                share = 100.0 * answered / max(published, 1)
                p50, p95 = (np.percentile(latency, q) for q in (50, 95)) if latency else (0, 0)
                print(
                    f'{size:>5} {fps:>4g} {mode:>10} {answered:>4}/{published:<3} '
                    f'{share:>3.0f}% {p50:>8.0f} {p95:>8.0f}',
                    flush=True,
                )


# --------------------------------------------------------------------------- part 2: accuracy


def _config(mode: str, delay: int, interval: int, reanchoring: bool = True) -> PipelineConfig:
    return PipelineConfig(
        keyframes=KeyframeConfig(interval=interval),
        mode=mode,
        keyframe_delay_frames=delay,
        reanchoring=reanchoring,
    )


def _settings():
    yield 'sync', 0
    for delay in DELAYS:
        yield 'fixed_delay', delay


def accuracy_table(sequences: dict, interval: int) -> None:
    """J per scenario and delay, with the loss against sync."""
    print(f'\nPart 2: J with the oracle segmenter, keyframe interval {interval}')
    names = list(sequences)
    print(f'{"mode":>12} {"d":>3} ' + ' '.join(f'{n:>18}' for n in names))
    base = {}
    for mode, delay in _settings():
        cells = []
        for name, sequence in sequences.items():
            config = _config(mode, max(delay, 1), interval)
            pipeline, results = run(sequence, OracleSegmenter(sequence), None, config)
            pipeline.close()
            j = score(sequence, results, {g: g for g in sequence.truth[0]}).j
            base.setdefault(name, j)
            cells.append(f'{j:.3f} ({100 * (j - base[name]):+.2f}pt)')
        print(f'{mode:>12} {delay:>3} ' + ' '.join(f'{c:>18}' for c in cells), flush=True)


def drift_table(sequence, trials: int, interval: int) -> None:
    """Drift recall (noticed by the keyframe after it, once merged) and clean false alarms."""
    print(f'\ndrift on moderate motion, {trials} injected drifts, keyframe interval {interval}')
    print(f'{"mode":>12} {"d":>3} {"recall":>8} {"false alarms":>22}')
    rng = np.random.default_rng(7)
    frames = len(sequence.frames)
    events = [
        DriftEvent(
            frame_index=int(rng.integers(8, frames - 3 * interval - max(DELAYS))),
            gt_id=int(rng.choice(list(sequence.truth[0]))),
            kind=('background', 'other_object')[trial % 2],
        )
        for trial in range(trials)
    ]
    for mode, delay in _settings():
        detected = 0
        for event in events:
            pipeline, results = run(
                sequence,
                OracleSegmenter(sequence, (event,)),
                OracleDetector(sequence, box_noise_px=2.0),
                _config(mode, max(delay, 1), interval),
            )
            pipeline.close()
            window = results[event.frame_index : event.frame_index + interval + delay + 1]
            detected += any(f'drift {event.gt_id} ' in e for r in window for e in r.events)
        pipeline, _ = run(
            sequence,
            OracleSegmenter(sequence),
            OracleDetector(sequence, box_noise_px=2.0),
            _config(mode, max(delay, 1), interval),
        )
        pipeline.close()
        checks = pipeline.stats.keyframes * len(sequence.truth[0])
        alarms = pipeline.stats.drift_detections
        print(
            f'{mode:>12} {delay:>3} {detected:>4}/{trials:<3} '
            f'{alarms:>6} in {checks:>4} = {alarms / max(checks, 1):.3f}',
            flush=True,
        )


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[256, 1024])
    parser.add_argument('--fps', type=float, nargs='+', default=[10.0, 30.0])
    parser.add_argument('--seconds', type=float, default=5.0, help='bag length')
    parser.add_argument('--frames', type=int, default=60, help='oracle sequence length')
    parser.add_argument('--trials', type=int, default=8)
    parser.add_argument('--interval', type=int, default=5)
    parser.add_argument('--skip-node', action='store_true', help='part 2 only')
    args = parser.parse_args()
    if not args.skip_node:
        from sam2_ros.ros.ros_env import apply_loopback_environment

        apply_loopback_environment()  # localhost discovery, a private ROS_DOMAIN_ID
        node_table(args.sizes, args.fps, args.seconds)
    sequences = {
        'moderate_motion': synthetic.scenario('moderate_motion', args.frames),
        'occlusion': synthetic.scenario('occlusion', args.frames),
    }
    accuracy_table(sequences, args.interval)
    drift_table(sequences['moderate_motion'], args.trials, args.interval)


if __name__ == '__main__':
    main()
