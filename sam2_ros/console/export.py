"""What the console exports of a frame: a COCO-style document and an instance-id PNG.

Both say which weights made the masks (the tracker's /diagnostics), so an export of
untrained masks cannot pass for a dataset.
"""

from __future__ import annotations

import datetime
import functools
import io

import numpy as np

from sam2_ros.console.protocol import FrameView, TrackerStatus, weights_note
from sam2_ros.core.labels import label_image
from sam2_ros.core.palette import object_color


def coco_document(view: FrameView, image_file: str, tracker: TrackerStatus) -> dict:
    """Return the frame's masks as a COCO-style dataset with one image.

    Segmentations are uncompressed RLE (`{"size": [h, w], "counts": [...]}`, column-major),
    which pycocotools reads with `frPyObjects`; `bbox` is [x, y, width, height]. Categories
    are the objects' labels (else their detector class, else "object"); `track_id` is the
    tracker's object id, stable across frames. `info` says which weights made the masks
    (`untrained_weights`: true, false, or null when the tracker's diagnostics were not seen).
    """
    names = sorted({obj.category for obj in view.objects})
    category_ids = {name: i + 1 for i, name in enumerate(names)}
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    return {
        'info': {
            'description': f'sam2_ros browser console export; {weights_note(tracker)}',
            'version': '1.0',
            'date_created': created,
            'untrained_weights': tracker.untrained if tracker.seen else None,
            'sam2': tracker.sam2,
            'detector': tracker.detector,
        },
        'licenses': [],
        'images': [
            {
                'id': 1,
                'file_name': image_file,
                'width': view.width,
                'height': view.height,
                'frame_id': view.frame_id,
                'stamp': {'sec': view.stamp.sec, 'nanosec': view.stamp.nanosec},
            }
        ],
        'categories': [
            {'id': category_ids[name], 'name': name, 'supercategory': 'object'} for name in names
        ],
        'annotations': [
            {
                'id': i + 1,
                'image_id': 1,
                'category_id': category_ids[obj.category],
                'segmentation': {'size': [view.height, view.width], 'counts': obj.counts},
                'area': obj.area,
                'bbox': list(obj.box),
                'iscrowd': 0,
                'track_id': obj.obj_id,
                'score': round(obj.score, 4),
                'state': obj.state,
            }
            for i, obj in enumerate(view.objects)
        ],
    }


def label_png(view: FrameView, tracker: TrackerStatus) -> bytes:
    """Encode the instance-id image as PNG.

    Pixel values are object ids. Up to id 255 it is an indexed PNG with a colour palette, as
    DAVIS and YouTube-VOS annotations are (readable as ids, viewable as colours); above that,
    16-bit greyscale. Text chunks give the frame's stamp and which weights made the masks.
    """
    from PIL import Image, PngImagePlugin

    labels = label_image(((o.obj_id, o.mask) for o in view.objects), (view.height, view.width))
    buffer = io.BytesIO()
    if labels.dtype == np.uint8:
        image = Image.fromarray(labels, mode='P')
        image.putpalette(_palette())
    else:
        image = Image.fromarray(labels)
    text = PngImagePlugin.PngInfo()
    text.add_text('Software', 'sam2_ros browser console')
    text.add_text('Source', f'frame {view.stamp} ({view.frame_id}); {weights_note(tracker)}')
    image.save(buffer, format='PNG', pnginfo=text)
    return buffer.getvalue()


@functools.cache
def _palette() -> list[int]:
    """Return the PNG palette: black, then each id's overlay colour (RGB)."""
    colors = [(0, 0, 0)] + [object_color(i)[::-1] for i in range(1, 256)]
    return [channel for color in colors for channel in color]
