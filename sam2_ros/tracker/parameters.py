"""The sam2_tracker node's parameters: one table of specs, declared with full descriptors.

Every parameter is declared from `PARAMETERS` with its description and range or choices.
Models and transport are read by the configure transition: they may change only while the
node is unconfigured (cleanup, set, configure), and `read_only` marks those fixed for the
node's lifetime: autostart, the diagnostics period and the image QoS (rclpy declares the
image topic's `qos_overrides.*` parameters, read-only, with the QoS of the first
subscription, and applies them to every later one, so a new QoS would be silently ignored).
The live ones map onto `PipelineConfig` fields and the node's own settings; `pipeline_config`
builds and validates a candidate config from a parameter set, so an invalid live update is
rejected with the reason before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from sam2_ros.core.depth import Depth3DConfig
from sam2_ros.core.drift import DriftConfig
from sam2_ros.core.keyframes import KeyframeConfig
from sam2_ros.core.matching import MatchConfig
from sam2_ros.core.pipeline import MODES, PipelineConfig
from sam2_ros.models.catalog import (
    PRECISIONS,
    SAM2_SIZES,
    PrecisionError,
    parse_component_precision,
)
from sam2_ros.ros.image_conversion import DEFAULT_MAX_PIXELS, RELIABILITIES
from sam2_ros.ros.parameters import ParamSpec, declare, parameters_problem

CLICK_MODES = ('new_object', 'refine_selected')
IMAGE_TRANSPORTS = ('raw', 'compressed')
DEPTH_TRANSPORTS = ('raw', 'compressedDepth', 'compressed')

_KEY = KeyframeConfig()
_DRIFT = DriftConfig()
_MATCH = MatchConfig()
_PIPE = PipelineConfig()
_DEPTH = Depth3DConfig()

PARAMETERS: tuple[ParamSpec, ...] = (
    # ----------------------------------------------------------------- models (read-only)
    ParamSpec(
        'sam2_model',
        'tiny',
        'SAM 2.1 model size.',
        at_configure=True,
        choices=tuple(SAM2_SIZES),
    ),
    ParamSpec(
        'sam2_checkpoint',
        '',
        'Path of a SAM 2.1 checkpoint (.pt) matching sam2_model; empty downloads the official '
        'weights from the Hugging Face Hub (or uses its local cache).',
        at_configure=True,
    ),
    ParamSpec(
        'sam2_image_size',
        1024,
        'SAM 2 input resolution in pixels (a multiple of 64); the official weights are trained '
        'at 1024, smaller is faster and coarser.',
        at_configure=True,
        low=256,
        high=1024,
        step=64,
    ),
    ParamSpec(
        'device',
        'auto',
        "Torch device of both models: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.",
        at_configure=True,
    ),
    ParamSpec(
        'gpu_memory_fraction',
        0.0,
        'Share of the GPU memory this node may allocate (torch per-process memory fraction), '
        'to keep it inside its share of a shared GPU; 0 sets no cap. A model that does not fit '
        'in it is refused at configure. Ignored (logged as not applicable) on the CPU.',
        at_configure=True,
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'precision',
        'auto',
        'SAM 2 compute precision; auto is bf16 on CUDA (fp16 where bf16 is unsupported) and on '
        'a CPU with native bf16 (avx512_bf16 or amx_bf16 flags; measured fastest there, masks '
        'within 0.98 IoU of fp32), fp32 on other CPUs.',
        at_configure=True,
        choices=PRECISIONS,
    ),
    ParamSpec(
        'component_precision',
        '',
        'Per-component SAM 2 precision, overriding precision: component=dtype pairs, e.g. '
        "'image_encoder=bf16,memory_attention=fp32' (components: image_encoder, "
        'memory_attention, mask_decoder, memory_encoder; dtypes fp32, bf16, fp16; unnamed ones '
        'run fp32); empty uses precision.',
        at_configure=True,
    ),
    ParamSpec(
        'sam2_compile',
        False,
        'Wrap the SAM 2 image encoder in torch.compile: the first step compiles it (minutes on '
        'a CPU); see the README for the measured gain.',
        at_configure=True,
    ),
    ParamSpec(
        'torch_threads',
        0,
        'Torch intra-op threads (SAM 2 and the detector); 0 is one per core, as torch does.',
        at_configure=True,
        low=0,
        high=256,
    ),
    ParamSpec(
        'opencv_threads',
        0,
        'OpenCV threads (optical flow, image decode and conversion); 0 is 1: the frame path '
        "runs short calls while SAM 2 holds the cores, and OpenCV's pool only adds waiting.",
        at_configure=True,
        low=0,
        high=256,
    ),
    ParamSpec(
        'untrained_models',
        False,
        'Build both models with random weights instead of loading checkpoints: masks and '
        'detections are meaningless. For tests and benchmarks only; logged and reported in '
        '/diagnostics as a warning.',
        at_configure=True,
    ),
    ParamSpec(
        'detector_model',
        'yolov10n.pt',
        'Ultralytics detector used to re-anchor drifting or lost objects and to auto-track '
        'classes: a name Ultralytics downloads (yolov10n.pt ... yolov10x.pt) or a local path; '
        'empty disables the detector (no re-anchoring).',
        at_configure=True,
    ),
    ParamSpec(
        'detector_image_size',
        640,
        'Detector input size in pixels (a multiple of 32).',
        at_configure=True,
        low=32,
        high=1920,
        step=32,
    ),
    # ----------------------------------------------------------------- inputs (read-only)
    ParamSpec(
        'image_transport',
        'raw',
        "'raw' subscribes to sensor_msgs/Image on `image`; 'compressed' to "
        'sensor_msgs/CompressedImage (jpeg, png) on `<image>/compressed`.',
        at_configure=True,
        choices=IMAGE_TRANSPORTS,
    ),
    ParamSpec(
        'image_qos_reliability',
        'best_effort',
        "Reliability of the image subscription: 'best_effort' (sensor data, accepts every "
        "publisher) or 'reliable' (no frame lost in transport: rosbag replay, large raw "
        'images). YAML qos_overrides for the image topic apply on top.',
        read_only=True,  # rclpy fixes the topic's qos_overrides parameters at first subscribe
        choices=RELIABILITIES,
    ),
    ParamSpec(
        'image_qos_depth',
        1,
        'History depth of the image subscription.',
        read_only=True,
        low=1,
        high=100,
    ),
    ParamSpec(
        'prompt_history_frames',
        30,
        'Recent frames kept so that a prompt naming the stamp of the frame the user clicked on '
        'lands on that frame and is carried to the present.',
        at_configure=True,
        low=1,
        high=300,
    ),
    ParamSpec(
        'max_image_pixels',
        DEFAULT_MAX_PIXELS,
        'Images with more pixels than this are dropped and counted as invalid.',
        low=1,
        high=2**31 - 1,
    ),
    ParamSpec(
        'autostart',
        True,
        'Configure and activate at startup (for ros2 run and plain launch files); false waits '
        'for lifecycle transitions from a manager.',
        read_only=True,
    ),
    ParamSpec(
        'diagnostics_period_sec',
        1.0,
        'Period of the /diagnostics status, seconds.',
        read_only=True,
        low=0.1,
        high=60.0,
    ),
    # ----------------------------------------------------------------- depth (3D)
    ParamSpec(
        'use_depth',
        False,
        'Subscribe to a depth image aligned to the colour image (`depth`, `depth/camera_info`) '
        'and give each object a 3D position and box, markers and an optional labelled cloud. '
        'False: no depth subscriptions, tracked_objects exactly as without depth.',
        at_configure=True,
    ),
    ParamSpec(
        'depth_transport',
        'raw',
        "'raw' subscribes to sensor_msgs/Image (16UC1 mm or 32FC1 m) on `depth`; "
        "'compressedDepth' to `<depth>/compressedDepth` (compressed_depth_image_transport, "
        "png); 'compressed' to a 16-bit PNG on `<depth>/compressed`.",
        at_configure=True,
        choices=DEPTH_TRANSPORTS,
    ),
    ParamSpec(
        'depth_max_offset_sec',
        0.02,
        'A colour frame is paired with the depth image nearest in stamp within this many '
        'seconds; a frame without one gets no 3D and is counted on /diagnostics.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'depth_wait_sec',
        0.03,
        'How long a frame waits for its depth partner when it has not arrived yet (depth and '
        'colour travel on separate topics) before it is published without 3D, seconds.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'depth_erode_px',
        _DEPTH.erode_px,
        'Mask border (pixels) left out of the 3D estimate, where depth flies between the '
        'object and the background.',
        low=0,
        high=50,
    ),
    ParamSpec(
        'depth_min_points',
        _DEPTH.min_points,
        'Fewer valid depth points in an object: no 3D (the reason is in depth_reason).',
        low=1,
        high=1000000,
    ),
    ParamSpec(
        'depth_min_coverage',
        _DEPTH.min_coverage,
        'A smaller share of the sampled mask with depth: no 3D.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'depth_max_m',
        _DEPTH.max_depth_m,
        'Depths beyond this many metres count as missing.',
        low=0.1,
        high=1000.0,
    ),
    ParamSpec(
        'publish_depth_cloud',
        True,
        "Publish the objects' depth points on `object_cloud` (PointCloud2 with a per-point "
        'object id, `label`) while it has subscribers.',
    ),
    ParamSpec(
        'depth_cloud_max_points',
        5000,
        'Most points per object in `object_cloud` (evenly spread); 0 keeps all.',
        low=0,
        high=10000000,
    ),
    # ----------------------------------------------------------------- tracking (live)
    ParamSpec(
        'keyframe_mode',
        'async',
        "Where SAM 2 runs. 'async': on its own thread, so every frame is answered from flow "
        'while SAM 2 works; its result for frame k is carried to the present frame. '
        "'sync': inside the frame loop, exact and deterministic, frames wait for SAM 2. "
        "'fixed_delay': async with the result of frame k applied on exactly frame "
        'k + keyframe_delay_frames, waiting for it if late (repeatable runs for evaluation).',
        choices=MODES,
    ),
    ParamSpec(
        'keyframe_interval',
        _KEY.interval,
        'Frames between scheduled SAM 2 keyframes; flow carries masks in between. 1 runs '
        'SAM 2 on every frame. In async mode the minimum spacing: keyframes come as fast as '
        'SAM 2 allows and no faster.',
        low=1,
        high=300,
    ),
    ParamSpec(
        'keyframe_delay_frames',
        _PIPE.keyframe_delay_frames,
        'fixed_delay mode: frames between a keyframe and the frame its SAM 2 result is '
        'applied on.',
        low=1,
        high=300,
    ),
    ParamSpec(
        'min_flow_confidence',
        _KEY.min_flow_confidence,
        'Optical-flow confidence below which the next frame is a keyframe.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'max_motion_px',
        _KEY.max_motion_px,
        'Per-frame object motion (pixels) above which the next frame is a keyframe.',
        low=1.0,
        high=10000.0,
    ),
    ParamSpec(
        'drift_iou_threshold',
        _DRIFT.min_iou,
        "IoU between SAM 2's keyframe mask and the flow-carried mask below which an object "
        'is drifting.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'drift_min_score',
        _DRIFT.min_score,
        'SAM 2 predicted IoU below which an object is drifting.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'min_visibility',
        _DRIFT.min_visibility,
        'SAM 2 object presence below which an object is not visible (occluded or gone).',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'lost_after_keyframes',
        _PIPE.lost_after_keyframes,
        'Keyframes of unresolved drift before an object is reported LOST.',
        low=1,
        high=1000,
    ),
    ParamSpec(
        'reanchoring',
        _PIPE.reanchoring,
        'Re-prompt drifting and lost objects from matching detections, under the same id.',
    ),
    ParamSpec(
        'detector_confidence',
        _MATCH.min_score,
        'Detections below this confidence are ignored.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'auto_track_classes',
        '',
        "Comma-separated detector class names (e.g. 'person,car') whose detections start new "
        'objects by themselves; empty: objects start from prompts only.',
    ),
    ParamSpec(
        'auto_track_min_score',
        _PIPE.auto_track_min_score,
        'Minimum detection confidence to auto-track an object.',
        low=0.0,
        high=1.0,
    ),
    ParamSpec(
        'max_objects',
        _PIPE.max_objects,
        'Most objects tracked at once; prompts beyond it are rejected.',
        low=1,
        high=255,
    ),
    ParamSpec(
        'click_mode',
        'new_object',
        'What an rqt_image_view or RViz click does: start a new object, or refine the selected '
        'object (the one created or prompted last).',
        choices=CLICK_MODES,
    ),
    ParamSpec(
        'publish_label_image',
        True,
        'Publish the instance-id image on `label_image`.',
    ),
    ParamSpec(
        'prompt_wait_sec',
        2.0,
        'A prompt naming the stamp of a frame that has not arrived yet waits this long for '
        'it before it is refused.',
        low=0.0,
        high=60.0,
    ),
    ParamSpec(
        'service_timeout_sec',
        10.0,
        'A prompt service waits this long for the tracking worker before answering with a '
        'timeout.',
        low=0.1,
        high=600.0,
    ),
)

SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}
CONFIGURE_TIME = frozenset(spec.name for spec in PARAMETERS if spec.at_configure)


def update_problem(parameters: Iterable, describe: Callable[[str], object | None]) -> str:
    """Return why rclpy `parameters` cannot be set on the tracker, or '' (see ros.parameters)."""
    return parameters_problem(parameters, describe, SPECS)


def declare_all(node) -> None:
    """Declare every parameter of `PARAMETERS` on `node`."""
    declare(node, PARAMETERS)


def check_values(values: dict) -> list[str]:
    """Return the reasons the given {name: value} set is invalid (empty when valid)."""
    problems = []
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is None:
            continue
        problem = spec.check(value)
        if problem:
            problems.append(problem)
    if values.get('component_precision'):
        try:
            parse_component_precision(values['component_precision'])
        except PrecisionError as error:
            problems.append(f'component_precision: {error}')
    if not problems:
        try:
            pipeline_config(values, PipelineConfig())
            depth_config(values, Depth3DConfig())
        except ValueError as error:
            problems.append(str(error))
    return problems


def depth_config(values: dict, base: Depth3DConfig) -> Depth3DConfig:
    """Return a validated copy of `base` with the depth parameters in `values` applied."""
    config = replace(
        base,
        erode_px=values.get('depth_erode_px', base.erode_px),
        min_points=values.get('depth_min_points', base.min_points),
        min_coverage=values.get('depth_min_coverage', base.min_coverage),
        max_depth_m=values.get('depth_max_m', base.max_depth_m),
    )
    config.validate()
    return config


def class_names(text: str) -> tuple[str, ...]:
    """Split a comma-separated class list ('person, car') into names."""
    return tuple(name.strip() for name in text.split(',') if name.strip())


def pipeline_config(values: dict, base: PipelineConfig) -> PipelineConfig:
    """Return a validated copy of `base` with the live parameters in `values` applied."""

    def pick(name, current):
        return values[name] if name in values else current

    config = replace(
        base,
        keyframes=replace(
            base.keyframes,
            interval=pick('keyframe_interval', base.keyframes.interval),
            min_flow_confidence=pick('min_flow_confidence', base.keyframes.min_flow_confidence),
            max_motion_px=pick('max_motion_px', base.keyframes.max_motion_px),
        ),
        drift=replace(
            base.drift,
            min_iou=pick('drift_iou_threshold', base.drift.min_iou),
            min_score=pick('drift_min_score', base.drift.min_score),
            min_visibility=pick('min_visibility', base.drift.min_visibility),
        ),
        matching=replace(
            base.matching, min_score=pick('detector_confidence', base.matching.min_score)
        ),
        reanchoring=pick('reanchoring', base.reanchoring),
        lost_after_keyframes=pick('lost_after_keyframes', base.lost_after_keyframes),
        auto_track_classes=(
            class_names(values['auto_track_classes'])
            if 'auto_track_classes' in values
            else base.auto_track_classes
        ),
        auto_track_min_score=pick('auto_track_min_score', base.auto_track_min_score),
        max_objects=pick('max_objects', base.max_objects),
        mode=pick('keyframe_mode', base.mode),
        keyframe_delay_frames=pick('keyframe_delay_frames', base.keyframe_delay_frames),
        frame_history=pick('prompt_history_frames', base.frame_history),
    )
    config.validate()
    return config
