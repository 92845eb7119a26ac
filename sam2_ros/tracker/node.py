"""The sam2_tracker lifecycle node: a thin ROS adapter around `TrackingPipeline`.

Transitions:
- configure: check the parameters and load SAM 2.1 and the detector; a failure leaves the node
  unconfigured and says why (in the log and on /diagnostics);
- activate: subscribe to images, camera_info and clicks, start the tracking worker;
- deactivate: unsubscribe and stop the worker (objects and memory are kept);
- cleanup: free the models and their GPU memory.
With `autostart` (the default) the node configures and activates itself, so `ros2 run` and
plain launch files work on every distribution.

Threading (see `tracking_worker`): input callbacks decode and store frames and return; one
worker thread runs the pipeline's frame path and publishes; in the asynchronous keyframe modes
SAM 2 runs on a thread of its own, so every frame is answered while SAM 2 works. Services
submit jobs and prompts to the worker and await them with a timeout, in their own callback
group, so they answer while a step runs. Service callbacks are coroutines: while they wait
they hold no executor thread, so any number of concurrent callers leaves the threads to the
frame path (a blocked pool makes rclpy's MultiThreadedExecutor resubmit every waiting
callback on each wake-up, starving everything). Every callback runs inside a
`CallbackGuard`: an unexpected exception is logged and counted on /diagnostics
(callback_errors) and never ends the process.
"""

from __future__ import annotations

from concurrent.futures import Future as WorkerFuture
import gc
import sys
import threading

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.task import Future as RosFuture
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from sam2_ros.core.camera_projection import check_camera_info, project_to_pixel
from sam2_ros.core.depth import (
    Depth3DConfig,
    DepthError,
    DepthImage,
    DepthPairer,
    Intrinsics,
    MaskedObject,
    Object3D,
    frame_objects_3d,
    no_3d,
)
from sam2_ros.core.memory import MemoryReading, Sam2OutOfMemoryError, peak_rss_mb, rss_mb
from sam2_ros.core.overlay import render_overlay
from sam2_ros.core.pipeline import FrameResult, PipelineConfig, TrackingPipeline
from sam2_ros.core.prompts import FrameError, PromptError
from sam2_ros.core.stamps import stamp_ns
from sam2_ros.core.tracking_types import TrackState, UnknownObjectError
from sam2_ros.msg import TrackedObjectArray
from sam2_ros.ros.callback_guard import CallbackGuard, failed_service_response
from sam2_ros.ros.conversions import (
    frame_result_to_msg,
    label_image_msg,
    labelled_cloud_msg,
    markers_msg,
    mask_to_msg,
    msg_to_mask,
)
from sam2_ros.ros.image_conversion import (
    ImageConversionError,
    array_to_image_msg,
    compressed_depth_msg_to_array,
    compressed_msg_to_rgb,
    depth_msg_to_array,
    image_msg_to_rgb,
    image_qos,
)
from sam2_ros.ros.names import READY_MESSAGE, status_name
from sam2_ros.ros.ros_logging import route_package_logging
from sam2_ros.ros.shutdown import init_rclpy, shutdown_rclpy, spin_until_stopped
from sam2_ros.srv import AddPrompt, RemoveObject, ResetTracking
from sam2_ros.tracker.diagnostics import DepthStats, NodeStats, diagnostic_status
from sam2_ros.tracker.parameters import (
    CONFIGURE_TIME,
    SPECS,
    check_values,
    class_names,
    declare_all,
    depth_config,
    pipeline_config,
    update_problem,
)
from sam2_ros.tracker.worker import Frame, FrameBuffer, PromptRequest, TrackingWorker

NODE_NAME = 'sam2_tracker'
# Prompt failures the user can fix: answered with the reason, state untouched.
USER_ERRORS = (PromptError, FrameError, UnknownObjectError)


class TrackerNode(LifecycleNode):
    """Tracks prompted objects in `image` with SAM 2; see the README for the interface."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters, services and diagnostics; autostart if asked to."""
        super().__init__(NODE_NAME, **kwargs)
        route_package_logging(self.get_logger())  # core and worker log records to /rosout
        declare_all(self)
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        self._stats = NodeStats()
        self._guard = CallbackGuard(self.get_logger())
        self._answer_unavailable_transitions()
        self._problem = ''  # why the node cannot track (configure failure), for diagnostics
        self._pipeline: TrackingPipeline | None = None
        self._detector = None
        self._model_info: dict[str, object] = {}
        self._memory_info: dict[str, object] = {}  # the model's size and the GPU budget
        self._untrained = False
        self._frames: FrameBuffer | None = None
        self._worker: TrackingWorker | None = None
        self._outputs = {}
        self._inputs = []
        self._camera_info: CameraInfo | None = None
        self._depth: DepthPairer | None = None  # depth images by stamp, with use_depth
        self._depth_stats = DepthStats()
        self._depth_intrinsics: Intrinsics | None = None  # from depth/camera_info
        self._depth_config = Depth3DConfig()
        self._selected_id = 0  # the object created or prompted last: clicks may refine it
        self._object_counts = (0, 0)  # (objects, lost) on the last published frame
        self._result_ages = ''  # 'id:frames, ...' since each object's SAM 2 result, last frame
        self._active = False
        self._params = {name: self.get_parameter(name).value for name in SPECS}
        guard = self._guard
        self.add_on_set_parameters_callback(guard(self._on_set_parameters, _refused_parameters))

        for srv_type, name, callback in (
            (AddPrompt, '~/add_prompt', self._on_add_prompt),
            (RemoveObject, '~/remove_object', self._on_remove_object),
            (ResetTracking, '~/reset_tracking', self._on_reset_tracking),
        ):
            self.create_service(
                srv_type,
                name,
                guard(callback, failed_service_response),
                callback_group=self._service_group,
            )
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(
            self._params['diagnostics_period_sec'],
            guard(self._publish_diagnostics),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        if self._params['autostart']:
            self._autostart()

    # ------------------------------------------------------------------ lifecycle

    def _answer_unavailable_transitions(self) -> None:
        """Refuse a ChangeState request for a transition the current state does not have.

        Jazzy's rclpy lets it raise out of the lifecycle service (RCLError "Transition is not
        registered"), which ends the executor thread; Kilted's answers success=false itself.
        """
        service = getattr(self, '_service_change_state', None)
        if service is None:
            return
        change_state = service.callback

        def answered(request, response):
            try:
                return change_state(request, response)
            except _rclpy.RCLError as error:
                self.get_logger().warning(
                    f'refused lifecycle transition {request.transition.id} '
                    f"'{request.transition.label}': {error}"
                )
                response.success = False
                return response

        service.callback = self._guard(answered, failed_service_response)

    def _autostart(self) -> None:
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error(
                'autostart: configure failed, the node stays unconfigured; fix the cause and '
                'configure it with a lifecycle transition or restart it'
            )
            return
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error('autostart: activate failed')

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters and load the models; stay unconfigured on failure."""
        params = self._params  # current: every accepted update is applied to it
        try:
            self._load(params)
        except Exception as error:  # noqa: BLE001 - every failure is reported, none crashes
            reason = str(error) or type(error).__name__
            self._problem = f'configure failed: {reason}'
            self.get_logger().error(self._problem)
            self._release_models()
            return TransitionCallbackReturn.FAILURE
        self._problem = ''
        self._frames = FrameBuffer(params['prompt_history_frames'])
        create = self.create_lifecycle_publisher
        self._outputs = {
            'objects': create(TrackedObjectArray, 'tracked_objects', 10),
            'labels': create(Image, 'label_image', 10),
            'overlay': create(Image, 'overlay', 10),
        }
        self._configure_depth(params)
        self.get_logger().info(f'configured: {self._model_info["sam2"]}')
        return TransitionCallbackReturn.SUCCESS

    def _load(self, params: dict) -> None:
        from sam2_ros.models.detector import YoloDetector
        from sam2_ros.models.memory_use import model_bytes
        from sam2_ros.models.sam2_model import load_sam2
        from sam2_ros.models.streaming_tracker import StreamingTracker, check_step_fits
        from sam2_ros.models.threads import apply_threads

        problems = check_values(params)
        if problems:
            raise ValueError('; '.join(problems))
        untrained = params['untrained_models']
        threads = apply_threads(params['torch_threads'], params['opencv_threads'])
        self.get_logger().info(f'threads: torch {threads[0]}, OpenCV {threads[1]}')
        loaded = load_sam2(
            params['sam2_model'],
            params['sam2_checkpoint'] or None,
            params['device'],
            params['component_precision'] or params['precision'],
            params['sam2_image_size'],
            untrained=untrained,
            memory_fraction=params['gpu_memory_fraction'],
            compile=params['sam2_compile'],
        )
        tracker = StreamingTracker(loaded)
        if loaded.device.type == 'cuda':
            check_step_fits(tracker)
        detector = None
        if params['detector_model']:
            detector = YoloDetector(
                params['detector_model'],
                confidence=params['detector_confidence'],
                image_size=params['detector_image_size'],
                device=str(loaded.device),
                untrained=untrained,
            )
        config = pipeline_config(params, PipelineConfig())
        self._check_classes(config.auto_track_classes, detector)
        self._pipeline = TrackingPipeline(tracker, detector, config)
        self._detector = detector
        self._untrained = untrained
        self._model_info = {
            'sam2': loaded.describe(),
            'device': str(loaded.device),
            'precision': loaded.precision,
            'detector': detector.describe() if detector is not None else 'none (no re-anchoring)',
        }
        self._memory_info = {
            'model_memory_mb': f'{model_bytes(loaded.model) / 2**20:.0f}',
            'gpu_memory_budget': budget_text(loaded, params['gpu_memory_fraction']),
        }

    @staticmethod
    def _check_classes(classes, detector) -> None:
        if not classes:
            return
        if detector is None:
            raise ValueError('auto_track_classes needs a detector, but detector_model is empty')
        known = set(detector.class_names.values())
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise ValueError(
                f'auto_track_classes {unknown} are not classes of the detector; it knows e.g. '
                + ', '.join(sorted(known)[:8])
            )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start the tracking worker."""
        self._worker = TrackingWorker(
            self._pipeline,
            self._frames,
            self._guard(self._publish_result),
            prompt_wait=self._params['prompt_wait_sec'],
        )
        self._worker.start()
        self._subscribe()
        self._active = True
        self.get_logger().info(
            f'{READY_MESSAGE}: image <- {self._inputs[0].topic_name}, '
            f'tracked objects -> {self._outputs["objects"].topic_name}'
        )
        return super().on_activate(state)

    def _subscribe(self) -> None:
        params = self._params
        qos = image_qos(params['image_qos_reliability'], params['image_qos_depth'])
        overrides = QoSOverridingOptions.with_default_policies()
        image_topic = self.resolve_topic_name('image')
        group = self._input_group
        guard = self._guard
        if params['image_transport'] == 'compressed':
            image = self.create_subscription(
                CompressedImage,
                image_topic + '/compressed',
                guard(self._on_compressed),
                qos,
                callback_group=group,
                qos_overriding_options=overrides,
            )
        else:
            image = self.create_subscription(
                Image,
                'image',
                guard(self._on_image),
                qos,
                callback_group=group,
                qos_overriding_options=overrides,
            )
        self._inputs = [
            image,
            self.create_subscription(
                CameraInfo,
                'camera_info',
                guard(self._on_camera_info),
                qos_profile_sensor_data,
                callback_group=group,
            ),
            self.create_subscription(
                Point,
                image_topic + '_mouse_left',
                guard(self._on_rqt_click),
                10,
                callback_group=group,
            ),
            self.create_subscription(
                PointStamped,
                '/clicked_point',
                guard(self._on_rviz_click),
                10,
                callback_group=group,
            ),
        ]
        self._inputs += self._subscribe_depth(qos, overrides)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker; objects and their memory are kept."""
        self._active = False
        self._stop_inputs()
        return super().on_deactivate(state)

    def _stop_inputs(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        if self._worker is not None and not self._worker.stop():
            self.get_logger().error('the tracking worker did not stop within 30 s')
        self._worker = None
        if self._frames is not None:
            self._frames.clear()
        if self._depth is not None:
            self._depth.clear()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and free the models (and their GPU memory)."""
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._depth = None
        self._release_models()
        self.get_logger().info('cleaned up: models released')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything from any state."""
        self.stop_tracking()
        return TransitionCallbackReturn.SUCCESS

    def stop_tracking(self) -> None:
        """Stop the worker and free the models (shutdown, or before destroying the node)."""
        self._active = False
        self._stop_inputs()
        self._release_models()

    def _release_models(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()  # SAM 2's thread ends with its step in flight
        self._pipeline = None
        self._detector = None
        self._frames = None
        self._memory_info = {}
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ inputs

    def _on_image(self, msg: Image) -> None:
        self._store(msg, image_msg_to_rgb)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._store(msg, compressed_msg_to_rgb)

    def _store(self, msg, decode) -> None:
        self._stats.image_received()
        frames = self._frames
        if frames is None:
            return
        try:
            rgb = decode(msg, max_pixels=self._params['max_image_pixels'])
        except ImageConversionError as error:
            count = self._stats.image_invalid()
            self.get_logger().warning(
                f'dropped invalid image ({count} so far): {error}', throttle_duration_sec=5.0
            )
            return
        frames.put(rgb, msg.header, stamp_ns(msg.header.stamp))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info(msg)
        except PromptError as error:  # clicks are refused with this reason until it is fixed
            self.get_logger().warning(
                f'camera_info cannot project RViz clicks: {error}', throttle_duration_sec=10.0
            )
        self._camera_info = msg

    def _on_rqt_click(self, msg: Point) -> None:
        self._click(float(msg.x), float(msg.y), 'rqt_image_view click')

    def _on_rviz_click(self, msg: PointStamped) -> None:
        info = self._camera_info
        if info is None:
            self.get_logger().warning(
                'ignored an RViz click: no camera_info received yet on '
                f'{self.resolve_topic_name("camera_info")}, so it cannot be projected'
            )
            return
        if msg.header.frame_id != info.header.frame_id:
            self.get_logger().warning(
                f"ignored an RViz click in frame '{msg.header.frame_id}': it must be in the "
                f"camera's optical frame '{info.header.frame_id}' to project onto the image "
                '(set RViz Fixed Frame to it)'
            )
            return
        try:
            u, v = project_to_pixel(msg.point.x, msg.point.y, msg.point.z, info)
        except PromptError as error:
            self.get_logger().warning(f'ignored an RViz click: {error}')
            return
        self._click(u, v, 'RViz click')

    def _click(self, x: float, y: float, source: str) -> None:
        """Start an object at a clicked pixel, or refine the selected one (click_mode)."""
        worker = self._worker
        if worker is None:
            return
        obj_id = 0
        if self._params['click_mode'] == 'refine_selected' and self._selected_id:
            obj_id = self._selected_id
        request = PromptRequest(
            obj_id=obj_id, points=np.array([[x, y]]), labels=np.array([1]), label=''
        )
        future = worker.submit_prompt(request)

        def report(done) -> None:
            try:
                outcome = done.result()
            except USER_ERRORS as error:
                self.get_logger().warning(f'{source} at ({x:.1f}, {y:.1f}) rejected: {error}')
                return
            except Sam2OutOfMemoryError as error:
                self.get_logger().warning(f'{source} at ({x:.1f}, {y:.1f}): {error.answer()}')
                return
            except Exception as error:  # noqa: BLE001 - logged, the node keeps running
                self.get_logger().error(f'{source} at ({x:.1f}, {y:.1f}) failed: {error}')
                return
            self._selected_id = outcome.obj.obj_id
            verb = 'started' if obj_id == 0 else 'refined'
            self.get_logger().info(
                f'{source} at ({x:.1f}, {y:.1f}) {verb} object {outcome.obj.obj_id} '
                f'(score {outcome.sam.score:.2f})'
            )

        future.add_done_callback(report)

    # ------------------------------------------------------------------ outputs

    def _publish_result(self, frame: Frame, result: FrameResult) -> None:
        """Publish one frame's outputs (called on the worker thread)."""
        if not self.context.ok():  # shut down from elsewhere while this frame was tracked
            return
        outputs = self._outputs
        height, width = frame.rgb.shape[:2]
        objects_3d = self._objects_3d(frame, result) if self._depth is not None else None
        outputs['objects'].publish(
            frame_result_to_msg(result, frame.header, (width, height), objects_3d)
        )
        if objects_3d is not None:
            self._publish_3d(frame, result, objects_3d)
        # Images nobody subscribes to are not built (a bag recorder is a subscriber).
        labels_wanted = outputs['labels'].get_subscription_count() > 0
        if self._params['publish_label_image'] and labels_wanted:
            outputs['labels'].publish(
                label_image_msg(result.objects, (height, width), frame.header)
            )
        if outputs['overlay'].get_subscription_count() > 0:
            overlay = render_overlay(frame.rgb, result)
            outputs['overlay'].publish(array_to_image_msg(overlay, 'bgr8', frame.header))
        self._stats.frame_published(frame.received, result.timings_ms['total'])
        self._object_counts = (
            len(result.objects),
            sum(obj.state == TrackState.LOST for obj in result.objects),
        )
        self._result_ages = ', '.join(
            f'{obj.obj_id}:{obj.frames_since_keyframe}' for obj in result.objects
        )
        for event in result.events:
            self.get_logger().info(event)

    def _publish_diagnostics(self) -> None:
        pipeline = self._pipeline
        values: dict[str, object] = dict(self._model_info)
        if self._frames is not None:
            values['frames_dropped'] = self._frames.dropped
        if pipeline is not None:
            stats = pipeline.stats
            objects, lost = self._object_counts  # written by the worker; never iterate its dicts
            values.update(
                objects=objects,
                lost_objects=lost,
                keyframe_ratio=f'{stats.keyframes / stats.frames:.3f}' if stats.frames else '0',
                reanchors=stats.reanchors,
                drift_detections=stats.drift_detections,
                lost_events=stats.lost_events,
                keyframe_mode=pipeline.config.mode,
                sam2_rate_hz=f'{stats.sam2_rate():.2f}',
                sam2_last_step_ms=f'{stats.sam2_last_ms:.0f}',
                sam2_result_lag_frames=stats.sam2_last_lag_frames,
                sam2_max_result_lag_frames=stats.sam2_max_lag_frames,
                sam2_failures=stats.sam2_failures,
                sam2_results_discarded=stats.sam2_discarded,
                sam2_result_age_frames=self._result_ages or 'none',
            )
        worker = self._worker
        if worker is not None:
            values['tracking_failures'] = worker.failures
        depth, warnings = self._depth, ()
        if depth is not None:
            values.update(self._depth_stats.values(depth.paired, depth.unpaired))
            problem = self._depth_stats.problem
            warnings = (f'depth refused: {problem}',) if problem else ()
        memory_warning = self._memory_values(values)
        if memory_warning:
            warnings += (memory_warning,)
        values['callback_errors'] = self._guard.errors
        if self._guard.last_error:
            values['last_callback_error'] = self._guard.last_error
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [
            diagnostic_status(
                status_name(self.get_fully_qualified_name()),
                str(self._model_info.get('device', 'unconfigured')),
                self._lifecycle_label(),
                self._problem,
                self._stats.snapshot(),
                values,
                self._untrained,
                warnings,
            )
        ]
        self._diagnostics_pub.publish(msg)

    def _memory_values(self, values: dict) -> str:
        """Add the memory figures and the out-of-memory state; return a warning or ''."""
        pipeline = self._pipeline
        if pipeline is None:  # no model loaded: no torch to ask
            reading = MemoryReading(rss_mb(), peak_rss_mb())
        else:
            from sam2_ros.models.memory_use import read_memory

            reading = read_memory(pipeline.segmenter.device)
        values.update(self._memory_info)
        values['memory_rss_mb'] = f'{reading.rss_mb:.0f}'
        values['memory_peak_rss_mb'] = f'{reading.peak_rss_mb:.0f}'
        if reading.gpu_allocated_mb is not None:
            values['gpu_allocated_mb'] = f'{reading.gpu_allocated_mb:.0f}'
            values['gpu_peak_allocated_mb'] = f'{reading.gpu_peak_allocated_mb:.0f}'
            values['gpu_reserved_mb'] = f'{reading.gpu_reserved_mb:.0f}'
        if pipeline is None:
            return ''
        memory = pipeline.memory
        values['sam2_out_of_memory'] = memory.failures
        values['sam2_out_of_memory_episode'] = memory.episode_failures if memory.in_episode else 0
        values['memory_degradation'] = memory.describe()
        if not memory.in_episode:
            return ''
        return (
            f'SAM 2 out of memory: {memory.episode_failures} failed steps in this episode; '
            f'degraded: {memory.describe()}; flow carries every object'
        )

    def _lifecycle_label(self) -> str:
        if self._active:
            return 'active'
        return 'inactive' if self._pipeline is not None else 'unconfigured'

    # ------------------------------------------------------------------ depth (3D)

    def _configure_depth(self, params: dict) -> None:
        """With use_depth: the depth buffer and the 3D outputs; without: nothing at all."""
        self._depth = None
        self._depth_intrinsics = None
        if not params['use_depth']:
            return
        self._depth = DepthPairer(round(params['depth_max_offset_sec'] * 1e9))
        self._depth_config = depth_config(params, Depth3DConfig())
        create = self.create_lifecycle_publisher
        self._outputs['markers'] = create(MarkerArray, 'object_markers', 10)
        self._outputs['cloud'] = create(PointCloud2, 'object_cloud', 10)

    def _apply_depth_params(self) -> None:
        """Apply live depth parameters (already validated) between frames."""
        if self._depth is None:
            return
        self._depth.max_offset_ns = round(self._params['depth_max_offset_sec'] * 1e9)
        self._depth_config = depth_config(self._params, self._depth_config)

    def _subscribe_depth(self, qos, overrides) -> list:
        if self._depth is None:
            return []
        group = self._input_group
        transport = self._params['depth_transport']
        if transport == 'raw':
            depth = self.create_subscription(
                Image,
                'depth',
                self._on_depth,
                qos,
                callback_group=group,
                qos_overriding_options=overrides,
            )
        else:
            depth = self.create_subscription(
                CompressedImage,
                f'{self.resolve_topic_name("depth")}/{transport}',
                self._on_compressed_depth,
                qos,
                callback_group=group,
                qos_overriding_options=overrides,
            )
        info = self.create_subscription(
            CameraInfo,
            'depth/camera_info',
            self._on_depth_camera_info,
            qos_profile_sensor_data,
            callback_group=group,
        )
        return [depth, info]

    def _on_depth(self, msg: Image) -> None:
        self._store_depth(msg, depth_msg_to_array)

    def _on_compressed_depth(self, msg: CompressedImage) -> None:
        self._store_depth(msg, compressed_depth_msg_to_array)

    def _store_depth(self, msg, decode) -> None:
        pairer = self._depth
        if pairer is None:
            return
        try:
            data, unit = decode(msg, max_pixels=self._params['max_image_pixels'])
        except ImageConversionError as error:
            count = self._depth_stats.image_invalid()
            self.get_logger().warning(
                f'dropped invalid depth image ({count} so far): {error}',
                throttle_duration_sec=5.0,
            )
            return
        stamp = stamp_ns(msg.header.stamp)
        pairer.put(DepthImage(data, unit, stamp, msg.header.frame_id, self._depth_intrinsics))

    def _on_depth_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._depth_intrinsics = Intrinsics.from_k(msg.k, msg.width, msg.height)
        except DepthError as error:
            self._depth_intrinsics = None
            self.get_logger().warning(
                f'ignored depth/camera_info: {error}', throttle_duration_sec=5.0
            )

    def _colour_intrinsics(self) -> Intrinsics:
        info = self._camera_info
        if info is None:
            raise DepthError(
                f'no camera_info received yet on {self.resolve_topic_name("camera_info")}: '
                'the colour intrinsics are needed to check the depth image fits'
            )
        return Intrinsics.from_k(info.k, info.width, info.height)

    def _objects_3d(self, frame: Frame, result: FrameResult) -> dict[int, Object3D]:
        """Each object's 3D from the depth image paired with the frame (worker thread)."""
        pairer = self._depth
        ids = [obj.obj_id for obj in result.objects]
        depth = pairer.pair(frame.stamp_ns, self._params['depth_wait_sec'])
        if depth is None:
            window = self._params['depth_max_offset_sec']
            reason = f'no depth image within {window:g} s of this frame'
            return {obj_id: no_3d(reason) for obj_id in ids}
        height, width = frame.rgb.shape[:2]
        objects = [MaskedObject(obj.obj_id, obj.mask, obj.box) for obj in result.objects]
        try:
            estimates = frame_objects_3d(
                objects,
                depth,
                self._colour_intrinsics(),
                (width, height),
                frame.header.frame_id,
                self._depth_config,
                keep_points=self._cloud_wanted(),
            )
        except DepthError as error:
            if self._depth_stats.refuse(str(error)):
                self.get_logger().warning(f'depth refused, no 3D: {error}')
            return {obj_id: no_3d(f'depth refused: {error}') for obj_id in ids}
        self._depth_stats.fitted()
        return estimates

    def _cloud_wanted(self) -> bool:
        return (
            self._params['publish_depth_cloud']
            and self._outputs['cloud'].get_subscription_count() > 0
        )

    def _publish_3d(self, frame: Frame, result: FrameResult, objects_3d) -> None:
        """Publish markers and the labelled cloud, each only while someone subscribes."""
        outputs = self._outputs
        if outputs['markers'].get_subscription_count() > 0:
            outputs['markers'].publish(markers_msg(result.objects, objects_3d, frame.header))
        if self._cloud_wanted():
            limit = self._params['depth_cloud_max_points']
            outputs['cloud'].publish(labelled_cloud_msg(objects_3d, frame.header, limit))

    # ------------------------------------------------------------------ services

    async def _run_on_worker(self, job, what: str, prompt: PromptRequest | None = None):
        """Run `job` (or apply `prompt`) on the worker and await it; (result, None) or (None, why).

        The wait holds no executor thread (see the module docstring).
        """
        worker = self._worker
        if worker is None or not self._active:
            return None, (
                f'cannot {what}: the node is {self._lifecycle_label()}'
                + (f' ({self._problem})' if self._problem else '')
                + '; activate it first'
            )
        future = worker.submit_prompt(prompt) if prompt is not None else worker.submit(job)
        timeout = self._params['service_timeout_sec']
        await self._settled(future, timeout)
        if not future.done():
            if future.cancel():
                return None, (
                    f'timed out after {timeout:g} s waiting for the tracking worker; '
                    f'nothing was changed (cannot {what})'
                )
            return None, (
                f'timed out after {timeout:g} s; the request is still running and its effect '
                'will show in tracked_objects'
            )
        try:
            return future.result(), None
        except USER_ERRORS as error:
            return None, str(error)
        except Sam2OutOfMemoryError as error:  # logged by the pipeline, once per episode
            return None, error.answer()
        except Exception as error:  # noqa: BLE001 - the service answers, the node keeps going
            self.get_logger().error(f'{what} failed: {type(error).__name__}: {error}')
            return None, f'{what} failed: {type(error).__name__}: {error}'

    def _settled(self, future: WorkerFuture, timeout: float) -> RosFuture:
        """Return an awaitable that completes when `future` is done or `timeout` passes."""
        settled = RosFuture()
        executor = self.executor

        def wake(*_) -> None:
            if not settled.done():
                settled.set_result(None)
            if executor is not None:
                executor.wake()  # rclpy resumes a waiting coroutine only when it wakes

        timer = threading.Timer(timeout, wake)
        timer.daemon = True
        timer.start()
        future.add_done_callback(wake)
        settled.add_done_callback(lambda _: timer.cancel())
        return settled

    async def _on_add_prompt(self, request, response):
        try:
            prompt = self._prompt_request(request, self._params['max_image_pixels'])
        except (PromptError, ValueError) as error:
            response.success, response.message = False, str(error)
            self.get_logger().warning(f'add_prompt rejected: {error}')
            return response
        outcome, error = await self._run_on_worker(None, 'prompt', prompt)
        if error is not None:
            response.success, response.message = False, error
            self.get_logger().warning(f'add_prompt rejected: {error}')
            return response
        obj, sam = outcome.obj, outcome.sam
        self._selected_id = obj.obj_id
        response.success = True
        response.object_id = obj.obj_id
        response.score = float(sam.score)
        response.mask = mask_to_msg(sam.mask)
        response.candidates = [mask_to_msg(m) for m in sam.candidates]
        response.candidate_scores = [float(s) for s in sam.candidate_scores]
        verb = 'added' if request.object_id == 0 else 'refined'
        response.message = f'{verb} object {obj.obj_id}' + (f' ({obj.label})' if obj.label else '')
        if outcome.carried is not None and outcome.carried.frames:
            response.message += (
                f'; prompted {outcome.carried.frames} frames ago, carried '
                f'{outcome.carried.motion_px:.1f} px to the newest frame'
            )
        self.get_logger().info(response.message)
        return response

    @staticmethod
    def _prompt_request(request, max_pixels: int) -> PromptRequest:
        """Convert the service request; canvas scaling waits for the frame's size.

        A mask larger than `max_pixels` (no accepted frame is) is refused before it is decoded.
        """
        points = np.array([[p.x, p.y] for p in request.points], dtype=np.float64).reshape(-1, 2)
        labels = np.array([p.label for p in request.points], dtype=np.int64)
        box = None
        if len(request.box):
            if len(request.box) != 4:
                raise PromptError(
                    f'box must have 4 values [x_min, y_min, x_max, y_max], got {len(request.box)}'
                )
            box = np.array(request.box, dtype=np.float64)
        mask = msg_to_mask(request.mask, max_pixels)
        if (request.canvas_width == 0) != (request.canvas_height == 0):
            raise PromptError(
                f'canvas size {request.canvas_width}x{request.canvas_height}: give both or neither'
            )
        return PromptRequest(
            obj_id=int(request.object_id),
            points=points if len(points) else None,
            labels=labels if len(labels) else None,
            box=box,
            mask=mask,
            label=request.label,
            stamp_ns=stamp_ns(request.frame_stamp),
            canvas=(
                (int(request.canvas_width), int(request.canvas_height))
                if request.canvas_width
                else None
            ),
        )

    async def _on_remove_object(self, request, response):
        obj_id = int(request.object_id)
        pipeline = self._pipeline
        _, error = await self._run_on_worker(
            lambda: pipeline.remove(obj_id), f'remove object {obj_id}'
        )
        response.success = error is None
        response.message = error or f'removed object {obj_id}'
        if error is None and self._selected_id == obj_id:
            self._selected_id = 0
        self._log_answer('remove_object', error, response.message)
        return response

    async def _on_reset_tracking(self, request, response):
        pipeline = self._pipeline
        count, error = await self._run_on_worker(lambda: pipeline.reset(), 'reset')
        response.success = error is None
        response.removed_count = count or 0
        response.message = error or f'reset: removed {count} objects'
        if error is None:
            self._selected_id = 0
        self._log_answer('reset_tracking', error, response.message)
        return response

    def _log_answer(self, service: str, error: str | None, message: str) -> None:
        """Log a service's answer: INFO when done, WARN with the reason when rejected."""
        if error is None:
            self.get_logger().info(message)
        else:
            self.get_logger().warning(f'{service} rejected: {error}')

    # ------------------------------------------------------------------ parameters

    def set_parameters_atomically(self, parameter_list) -> SetParametersResult:
        """Set parameters, refusing unknown names and wrong types with the name and type."""
        reason = update_problem(parameter_list, self._declared_descriptor)
        if reason:
            self.get_logger().warning(f'rejected parameter update: {reason}')
            return SetParametersResult(successful=False, reason=reason)
        return super().set_parameters_atomically(parameter_list)

    def set_parameters(self, parameter_list) -> list[SetParametersResult]:
        """Set each parameter on its own, with the refusals of `set_parameters_atomically`."""
        return [self.set_parameters_atomically([parameter]) for parameter in parameter_list]

    def _declared_descriptor(self, name: str):
        return self.describe_parameter(name) if self.has_parameter(name) else None

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Validate live updates; apply them between frames."""
        updates = {p.name: p.value for p in parameters if p.name in SPECS}
        if not updates:
            return SetParametersResult(successful=True)
        problems = check_values({**self._params, **updates})
        fixed = sorted(CONFIGURE_TIME.intersection(updates))
        if fixed and self._pipeline is not None:
            problems.append(
                f'{", ".join(fixed)} can change only while the node is unconfigured: '
                'deactivate and clean it up, set the parameters, then configure it'
            )
        if not problems and 'auto_track_classes' in updates and self._pipeline is not None:
            try:
                self._check_classes(class_names(updates['auto_track_classes']), self._detector)
            except ValueError as error:
                problems.append(str(error))
        if problems:
            reason = '; '.join(problems)
            self.get_logger().warning(f'rejected parameter update: {reason}')
            return SetParametersResult(successful=False, reason=reason)
        self._params = {**self._params, **updates}
        self._apply_depth_params()
        pipeline = self._pipeline
        if pipeline is not None:
            config = pipeline_config(self._params, pipeline.config)
            detector = self._detector
            confidence = self._params['detector_confidence']

            worker = self._worker
            prompt_wait = self._params['prompt_wait_sec']

            def apply() -> None:
                pipeline.update_config(config)
                if worker is not None:
                    worker.prompt_wait = prompt_wait
                if detector is not None:
                    detector.confidence = confidence

            if self._worker is not None and self._worker.running:
                self._worker.submit(apply)
            else:
                apply()
        return SetParametersResult(successful=True)


def budget_text(loaded, fraction: float) -> str:
    """Say what GPU memory budget the node has, for diagnostics."""
    if loaded.device.type != 'cuda':
        ignored = f'; gpu_memory_fraction={fraction:g} ignored' if fraction else ''
        return f'not applicable ({loaded.device.type}){ignored}'
    if loaded.memory_budget is None:
        return 'none (all of the GPU)'
    return f'{loaded.memory_budget / 2**20:.0f} MiB (gpu_memory_fraction={fraction:g})'


def _refused_parameters(reason: str, parameters) -> SetParametersResult:
    """Refuse a parameter update whose check raised (the callback guard's fallback)."""
    names = ', '.join(p.name for p in parameters)
    return SetParametersResult(
        successful=False, reason=f'internal error checking {names}, nothing changed: {reason}'
    )


def main(args=None) -> int:
    """Run the node until SIGINT, SIGTERM or an external shutdown; return the exit code."""
    stop = init_rclpy(args)
    node = None
    executor = MultiThreadedExecutor(num_threads=4)
    try:
        node = TrackerNode()
        executor.add_node(node)
        spin_until_stopped(executor, stop)
    except (KeyboardInterrupt, ExternalShutdownException):  # interrupted while starting
        pass
    except ParameterException as error:  # a parameter of the wrong type or out of range
        rclpy.logging.get_logger(NODE_NAME).fatal(f'invalid parameters: {error}')
        return 2
    finally:
        if node is not None:
            node.stop_tracking()
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        shutdown_rclpy(stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
