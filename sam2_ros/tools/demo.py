"""The main job: build a bag, track it with the sam2_tracker node, evaluate, render a video.

Everything runs over real ROS 2 topics and services, confined to localhost in a private
domain, with the same tools a user runs by hand:
1. `sam2_make_bag`: a semi-synthetic scene (real photographs moving over real footage from
   Debian's opencv-doc, or generated textures without it) with exact ground truth, and a
   prompt script that boxes each object where it first appears;
2. the installed `sam2_tracker_node`, started as `ros2 run` would, with use_sim_time;
3. `sam2_replay --lockstep --prompts ... --record ...`: every frame played and answered;
4. `sam2_evaluate`: J&F per object, id switches, lost frames, latency (report.json);
5. `sam2_render`: overlay.mp4;
then a summary. Weights: `--weights official` loads SAM 2.1 and YOLOv10 checkpoints (Hub /
Ultralytics download or cache) and fails with the node's reason when they cannot be had;
`untrained` builds random weights (masks are meaningless); `auto` (the default) uses the
official ones when the SAM 2.1 checkpoint can be had and otherwise says so and runs
untrained. Untrained runs say so on every line that depends on the weights and on the video.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import sys

from sam2_ros.ros.ros_env import apply_loopback_environment
from sam2_ros.tools.cli import positive_float

IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'


def choose_weights(requested: str, model: str) -> tuple[bool, str]:
    """Return (untrained, why) for --weights auto|official|untrained."""
    if requested == 'untrained':
        return True, 'requested with --weights untrained'
    if requested == 'official':
        return False, 'requested with --weights official'
    import socket

    from huggingface_hub import hf_hub_download

    from sam2_ros.models.catalog import SAM2_SIZES, ModelLoadError, download_checkpoint

    spec = SAM2_SIZES[model]
    try:  # the local Hub cache first, then the network (a quick DNS check avoids retries)
        hf_hub_download(spec.hf_repo, spec.filename, local_files_only=True)
        return False, f'the official SAM 2.1 {model} checkpoint is in the local Hub cache'
    except Exception:  # noqa: BLE001 - not cached
        pass
    try:
        socket.getaddrinfo('huggingface.co', 443)
    except OSError as error:
        return (
            True,
            f'the SAM 2.1 {model} checkpoint is not cached and the Hub is unreachable ({error})',
        )
    try:
        download_checkpoint(model)
    except ModelLoadError as error:
        return True, f'the official SAM 2.1 {model} checkpoint cannot be had here ({error})'
    return False, f'the official SAM 2.1 {model} checkpoint is available'


class Progress:
    """A one-line progress bar on a terminal; a line per quarter elsewhere (logs, CI)."""

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._quarter = -1

    def __call__(self, done: int, total: int) -> None:
        """Show `done` of `total`."""
        total = max(total, 1)
        if self.tty:
            filled = round(30 * done / total)
            bar = '#' * filled + '.' * (30 - filled)
            end = '\n' if done >= total else ''
            self.stream.write(f'\r[demo] {self.label} [{bar}] {done}/{total}{end}')
            self.stream.flush()
            return
        quarter = 4 * done // total
        if quarter > self._quarter:
            self._quarter = quarter
            print(f'[demo] {self.label}: {done}/{total}', file=self.stream, flush=True)


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='sam2_demo',
        description='Build a bag with ground truth, track it with the sam2_tracker node in '
        'lockstep replay (localhost only, private domain), evaluate and render the result.',
    )
    parser.add_argument('--frames', type=int, default=48, help='frames in the bag (48)')
    parser.add_argument('--width', type=int, default=640, help='image width (640)')
    parser.add_argument('--height', type=int, default=480, help='image height (480)')
    parser.add_argument('--objects', type=int, default=2, help='objects in the scene (2)')
    parser.add_argument(
        '--output-dir',
        type=Path,
        default=Path('sam2_demo_output'),
        help='where the bags, report and video go (./sam2_demo_output; replaced)',
    )
    parser.add_argument(
        '--timeout', type=positive_float, default=180.0, help='seconds to wait for the node (180)'
    )
    parser.add_argument(
        '--weights',
        choices=('auto', 'official', 'untrained'),
        default='auto',
        help='official checkpoints, untrained random weights, or auto: official when they can '
        'be had, else untrained (default auto)',
    )
    parser.add_argument(
        '--model',
        default='tiny',
        choices=('tiny', 'small', 'base_plus', 'large'),
        help='SAM 2.1 size',
    )
    parser.add_argument(
        '--image-size',
        type=int,
        default=0,
        help='SAM 2 input size; 0 = 1024 with official weights, 256 with untrained ones',
    )
    args = parser.parse_args(argv)
    if args.frames < 8 or args.width < 160 or args.height < 120 or not 1 <= args.objects <= 6:
        parser.error('--frames >= 8, --width >= 160, --height >= 120, 1 <= --objects <= 6')
    if args.image_size < 0:
        parser.error(f'argument --image-size: {args.image_size} must be >= 0')
    return args


def _node_command(untrained: bool, model: str, image_size: int) -> list[str]:
    from sam2_ros.ros.node_process import installed_executable

    parameters = {
        'use_sim_time': True,
        'image_qos_reliability': 'reliable',
        'image_qos_depth': 10,
        'untrained_models': untrained,
        'sam2_model': model,
        'sam2_image_size': image_size,
        # SAM 2 off the frame path with a fixed latency: the lockstep demo repeats exactly.
        'keyframe_mode': 'fixed_delay',
        'keyframe_delay_frames': 2,
    }
    command = [installed_executable('sam2_tracker_node'), '--ros-args']
    for name, value in parameters.items():
        command += ['-p', f'{name}:={str(value).lower() if isinstance(value, bool) else value}']
    return command + ['-r', f'image:={IMAGE_TOPIC}', '-r', f'camera_info:={CAMERA_INFO_TOPIC}']


def _make_input_bag(args, paths: dict[str, Path]):
    from sam2_ros.evaluation import synthetic
    from sam2_ros.tools.make_bag import Source, first_box_prompts, make_bag
    from sam2_ros.tools.prompt_script import dump_prompt_script, load_prompt_script

    source = synthetic.scenario(
        'moderate_motion',
        num_frames=args.frames,
        width=args.width,
        height=args.height,
        num_objects=args.objects,
    )
    where = (
        'real footage (opencv-doc vtest.avi) and real photographs'
        if source.source == 'opencv-doc'
        else f'{source.source} textures (install Debian opencv-doc for real footage)'
    )
    bar = Progress('writing the input bag')
    summary = make_bag(
        paths['input'],
        Source(iter(source.frames), 10.0, f'demo scene: {where}', source.truth),
        image_topic=IMAGE_TOPIC,
        camera_info_topic=CAMERA_INFO_TOPIC,
        progress=lambda done: bar(done, args.frames),
    )
    events = first_box_prompts(source.truth)
    paths['prompts'].write_text(
        dump_prompt_script(events, 'sam2_demo: a box around each object where it first shows.')
    )
    print(
        f'[demo] input bag {summary.path}: {summary.frames} frames {summary.width}x'
        f'{summary.height}, {where}, ground truth for {args.objects} objects; prompt script '
        f'{paths["prompts"]} ({len(events)} box prompts)'
    )
    return load_prompt_script(paths['prompts'])


def main(argv=None) -> int:
    """Run the demo; return 0 when every frame was answered and the node exited cleanly."""
    args = _parse_args(argv)
    domain_id = apply_loopback_environment()

    from sam2_ros.ros.names import READY_MESSAGE
    from sam2_ros.ros.node_process import NodeProcess
    from sam2_ros.tools.bag_io import BagError
    from sam2_ros.tools.evaluate import evaluate, format_report, write_report
    from sam2_ros.tools.render import render_video
    from sam2_ros.tools.replay import Replayer, ReplayError, ReplayOptions, print_result

    print(f'[demo] ROS_DOMAIN_ID={domain_id}, discovery limited to localhost')
    untrained, why = choose_weights(args.weights, args.model)
    weights = 'UNTRAINED random weights' if untrained else f'SAM 2.1 {args.model} official weights'
    print(f'[demo] weights: {weights}: {why}')
    tag = '[demo][UNTRAINED] ' if untrained else '[demo] '
    image_size = args.image_size or (256 if untrained else 1024)
    out = args.output_dir
    paths = {
        'input': out / 'input_bag',
        'output': out / 'output_bag',
        'prompts': out / 'prompts.yaml',
        'report': out / 'report.json',
        'video': out / 'overlay.mp4',
    }
    out.mkdir(parents=True, exist_ok=True)
    for bag in (paths['input'], paths['output']):
        shutil.rmtree(bag, ignore_errors=True)

    node = NodeProcess(
        _node_command(untrained, args.model, image_size), echo=lambda line: print(f'[node] {line}')
    )
    result, node_exit = None, None
    try:
        script = _make_input_bag(args, paths)
        node.wait_for(READY_MESSAGE, timeout=args.timeout)
        options = ReplayOptions(
            bag=paths['input'],
            lockstep=True,
            script=script,
            record=paths['output'],
            connect_timeout=args.timeout,
            frame_timeout=args.timeout,
        )
        result = Replayer(options, Progress('lockstep replay')).run()
    except (TimeoutError, RuntimeError, FileNotFoundError, BagError, ReplayError) as error:
        print(f'[demo] error: {error}', file=sys.stderr)
    finally:
        node_exit = node.interrupt()
        print(f'[demo] node exited with code {node_exit}')
    if result is None:
        print('[demo] FAILED')
        return 1
    print_result(result, prefix=tag.strip())
    try:
        report = evaluate(paths['output'])
        write_report(report, paths['report'])
        for line in format_report(report).splitlines():
            print(f'{tag}{line}')
        frames = render_video(
            paths['input'],
            paths['output'],
            paths['video'],
            banner=f'SAM 2.1 {args.model}',
            progress=Progress('rendering'),
            overwrite=True,  # the demo's own output folder, rewritten on every run
        )
    except BagError as error:
        print(f'[demo] error: {error}', file=sys.stderr)
        print('[demo] FAILED')
        return 1
    accuracy = report['accuracy'] or {}
    latency = report['latency_ms']
    print(
        f'{tag}summary: {report["frames_answered"]}/{report["frames_published"]} frames '
        f'answered, {report["keyframes"]} keyframes, {report["reanchors"]} re-anchors, '
        f'{report["output_fps"]:.2f} fps, latency p50 {latency["p50"]:.0f} ms p95 '
        f'{latency["p95"]:.0f} ms, J&F {accuracy.get("J&F", float("nan")):.3f}'
    )
    print(
        f'[demo] files: {paths["input"]} (input), {paths["output"]} (outputs), '
        f'{paths["report"]}, {paths["video"]} ({frames} frames)'
    )
    ok = (
        not result.unanswered
        and not result.interrupted
        and all(log.success for log in result.prompts)
        and node_exit == 0
    )
    print('[demo] ' + ('OK' if ok else 'FAILED'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
