"""Pipeline results <-> sam2_ros messages; label images and 3D markers as messages.

Every output message carries the source image's header unchanged; masks travel as
COCO-style RLE (`sam2_ros/msg/Mask`); 3D outputs are in the camera optical frame of that
header.
"""

from __future__ import annotations

import math

import numpy as np

from sam2_ros.core.depth import Object3D
from sam2_ros.core.labels import label_image
from sam2_ros.core.palette import object_color
from sam2_ros.core.pipeline import FrameResult, TrackedObject
from sam2_ros.core.rle import DEFAULT_MAX_PIXELS, decode_rle, encode_rle
from sam2_ros.core.stamps import NS_PER_SEC, stamp_ns
from sam2_ros.core.tracking_types import TrackState
from sam2_ros.ros.image_conversion import array_to_image_msg


def mask_to_msg(mask: np.ndarray):
    """Encode a boolean (H, W) mask as a sam2_ros/Mask message."""
    from sam2_ros.msg import Mask

    rle = encode_rle(mask)
    return Mask(height=rle.height, width=rle.width, counts=rle.counts.tolist())


def msg_to_mask(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """Decode a sam2_ros/Mask message; None for the empty "no mask" message.

    A mask claiming more than `max_pixels` pixels raises ValueError before it is allocated.
    """
    if msg.height == 0 and msg.width == 0 and len(msg.counts) == 0:
        return None
    return decode_rle(msg.height, msg.width, msg.counts, max_pixels)


def tracked_object_to_msg(obj: TrackedObject, stamp=None, obj_3d: Object3D | None = None):
    """Build a sam2_ros/TrackedObject from a pipeline object on the frame stamped `stamp`.

    `obj_3d`: its position and size from depth, when estimated.
    """
    from sam2_ros.msg import TrackedObject as TrackedObjectMsg

    msg = TrackedObjectMsg(
        id=obj.obj_id,
        label=obj.label,
        class_id=obj.class_id,
        class_name=obj.class_name,
        state=int(obj.state),
        score=float(obj.score),
        visibility=float(obj.visibility),
        propagation_confidence=float(obj.propagation_confidence),
        area=obj.area,
        mask=mask_to_msg(obj.mask),
        frames_since_keyframe=obj.frames_since_keyframe,
        reanchor_count=obj.reanchor_count,
    )
    if obj.box is not None:
        x0, y0, x1, y1 = obj.box
        msg.bbox.x_offset, msg.bbox.y_offset = x0, y0
        msg.bbox.width, msg.bbox.height = x1 - x0, y1 - y0
    if obj.centroid is not None:
        msg.centroid_x, msg.centroid_y = obj.centroid
    else:
        msg.centroid_x = msg.centroid_y = math.nan
    msg.keyframe_age_ms = math.nan
    if obj.keyframe_stamp is not None:
        msg.keyframe_stamp.sec, msg.keyframe_stamp.nanosec = divmod(obj.keyframe_stamp, NS_PER_SEC)
        if stamp is not None:
            msg.keyframe_age_ms = (stamp_ns(stamp) - obj.keyframe_stamp) / 1e6
    if obj_3d is not None:
        _fill_3d(msg, obj_3d)
    return msg


def _fill_3d(msg, obj_3d: Object3D) -> None:
    msg.depth_points = obj_3d.valid_points
    msg.depth_coverage = float(obj_3d.coverage)
    msg.depth_reason = obj_3d.reason
    if not obj_3d.has_3d:
        return
    msg.has_3d = True
    msg.position.x, msg.position.y, msg.position.z = obj_3d.centre
    msg.box_center.x, msg.box_center.y, msg.box_center.z = obj_3d.box_centre
    msg.box_size.x, msg.box_size.y, msg.box_size.z = obj_3d.box_size


def frame_result_to_msg(
    result: FrameResult,
    header,
    image_size: tuple[int, int],
    objects_3d: dict[int, Object3D] | None = None,
):
    """Build the TrackedObjectArray of one frame; `header` is the source image's header.

    `objects_3d` (object id -> 3D) fills the 3D fields; without it they keep their defaults.
    """
    from sam2_ros.msg import TrackedObjectArray

    width, height = image_size
    objects_3d = objects_3d or {}
    return TrackedObjectArray(
        header=header,
        image_height=height,
        image_width=width,
        is_keyframe=result.is_keyframe,
        keyframe_reasons=list(result.keyframe_reasons),
        objects=[
            tracked_object_to_msg(obj, header.stamp, objects_3d.get(obj.obj_id))
            for obj in result.objects
        ],
    )


def _rgba(obj_id: int, alpha: float):
    from std_msgs.msg import ColorRGBA

    b, g, r = object_color(obj_id)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


def markers_msg(objects: list[TrackedObject], objects_3d: dict[int, Object3D], header):
    """Build a MarkerArray: per object with 3D, a box and a text label in the object's colour.

    The array starts with DELETEALL, so the boxes of objects that lost their 3D (or were
    removed) disappear with the next message.
    """
    from visualization_msgs.msg import Marker, MarkerArray

    markers = [Marker(header=header, action=Marker.DELETEALL)]
    for obj in objects:
        obj_3d = objects_3d.get(obj.obj_id)
        if obj_3d is None or not obj_3d.has_3d:
            continue
        box = Marker(header=header, ns='sam2_boxes', id=obj.obj_id, type=Marker.CUBE)
        box.pose.position.x, box.pose.position.y, box.pose.position.z = obj_3d.box_centre
        box.pose.orientation.w = 1.0
        box.scale.x, box.scale.y, box.scale.z = (max(s, 1e-3) for s in obj_3d.box_size)
        box.color = _rgba(obj.obj_id, 0.45)
        text = Marker(header=header, ns='sam2_labels', id=obj.obj_id)
        text.type = Marker.TEXT_VIEW_FACING
        x, y, z = obj_3d.box_centre
        text.pose.position.x, text.pose.position.z = x, z
        text.pose.position.y = y - obj_3d.box_size[1] / 2 - 0.03  # above the box (y is down)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.05  # text height, metres
        text.color = _rgba(obj.obj_id, 1.0)
        name = obj.label or obj.class_name
        text.text = f'{obj.obj_id} {name} {obj_3d.centre[2]:.2f} m'.replace('  ', ' ')
        markers += [box, text]
    return MarkerArray(markers=markers)


def labelled_cloud_msg(objects_3d: dict[int, Object3D], header, max_points: int = 0):
    """Build a PointCloud2 of the objects' inlier points: x, y, z (float32), label (uint32).

    `label` is the object id, as PCL's PointXYZL names it; `max_points` > 0 keeps at most that
    many evenly spread points per object.
    """
    from sensor_msgs.msg import PointCloud2, PointField

    dtype = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('label', '<u4')])
    parts = []
    for obj_id, obj_3d in sorted(objects_3d.items()):
        points = obj_3d.points
        if not obj_3d.has_3d or points is None or not len(points):
            continue
        if max_points and len(points) > max_points:
            points = points[:: -(-len(points) // max_points)]
        part = np.empty(len(points), dtype)
        part['x'], part['y'], part['z'] = points[:, 0], points[:, 1], points[:, 2]
        part['label'] = obj_id
        parts.append(part)
    cloud = np.concatenate(parts) if parts else np.empty(0, dtype)
    fields = [
        PointField(name=name, offset=dtype.fields[name][1], datatype=kind, count=1)
        for name, kind in (
            ('x', PointField.FLOAT32),
            ('y', PointField.FLOAT32),
            ('z', PointField.FLOAT32),
            ('label', PointField.UINT32),
        )
    ]
    return PointCloud2(
        header=header,
        height=1,
        width=len(cloud),
        fields=fields,
        is_bigendian=False,
        point_step=dtype.itemsize,
        row_step=dtype.itemsize * len(cloud),
        data=cloud.tobytes(),
        is_dense=True,
    )


def msg_to_frame_result(msg) -> FrameResult:
    """Rebuild a FrameResult (masks, boxes, states) from a TrackedObjectArray.

    The one decoder of tracked objects: the console, the evaluation and the renderer read the
    tracker's answers through it.
    Works on rclpy messages and on messages read from a bag with `rosbags` alike; timings and
    events are not part of the message and come back empty.
    """
    shape = (int(msg.image_height), int(msg.image_width))
    objects = []
    for obj in msg.objects:
        mask = msg_to_mask(obj.mask)
        if mask is None or mask.shape != shape:
            mask = np.zeros(shape, bool)
        roi = obj.bbox
        box = None
        if roi.width and roi.height:
            box = (roi.x_offset, roi.y_offset, roi.x_offset + roi.width, roi.y_offset + roi.height)
        centroid = None
        if math.isfinite(obj.centroid_x) and math.isfinite(obj.centroid_y):
            centroid = (float(obj.centroid_x), float(obj.centroid_y))
        objects.append(
            TrackedObject(
                obj_id=int(obj.id),
                label=obj.label,
                class_id=int(obj.class_id),
                class_name=obj.class_name,
                state=TrackState(int(obj.state)),
                mask=mask,
                box=box,
                centroid=centroid,
                area=int(obj.area),
                score=float(obj.score),
                visibility=float(obj.visibility),
                propagation_confidence=float(obj.propagation_confidence),
                frames_since_keyframe=int(obj.frames_since_keyframe),
                keyframe_stamp=stamp_ns(obj.keyframe_stamp),
                reanchor_count=int(obj.reanchor_count),
            )
        )
    stamp = stamp_ns(msg.header.stamp)
    return FrameResult(
        frame_index=-1,
        stamp=stamp,
        is_keyframe=bool(msg.is_keyframe),
        keyframe_reasons=tuple(msg.keyframe_reasons),
        objects=objects,
        events=[],
        timings_ms={},
    )


def label_image_msg(objects: list[TrackedObject], shape: tuple[int, int], header):
    """Return the label image (mono8, or 16UC1 above id 255) with the source header."""
    labels = label_image(((obj.obj_id, obj.mask) for obj in objects), shape)
    return array_to_image_msg(labels, 'mono8' if labels.dtype == np.uint8 else '16UC1', header)
