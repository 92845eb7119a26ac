"""The browser console node's parameters, as ParamSpecs (sam2_ros.ros.parameters)."""

from __future__ import annotations

from dataclasses import replace

from sam2_ros.ros.image_conversion import RELIABILITIES
from sam2_ros.ros.parameters import ParamSpec

IMAGE_TRANSPORTS = ('raw', 'compressed')

PARAMETERS = tuple(
    replace(spec, read_only=True)  # the server binds once: restart the node to change them
    for spec in (
        ParamSpec(
            'tracker',
            'sam2_tracker',
            'Name of the sam2_tracker node whose services the console calls '
            '(<tracker>/add_prompt, /remove_object, /reset_tracking); a relative name resolves in '
            "the console's namespace.",
        ),
        ParamSpec(
            'image_transport',
            'raw',
            "How to read the tracker's input image: 'raw' (sensor_msgs/Image on `image`) or "
            "'compressed' (sensor_msgs/CompressedImage on `<image>/compressed`; JPEG is forwarded "
            'without re-encoding). Use the same value as the tracker.',
            choices=IMAGE_TRANSPORTS,
        ),
        ParamSpec(
            'image_qos_reliability',
            'best_effort',
            "Reliability of the image subscription: 'best_effort' (accepts every publisher) or "
            "'reliable' (no frame lost in transport: large raw images, rosbag replay). Use the "
            'same value as the tracker, or the console misses the frames the tracker answers.',
            choices=RELIABILITIES,
        ),
        ParamSpec(
            'host',
            '127.0.0.1',
            'Address the web server listens on. Anything but a loopback address needs `token`.',
        ),
        ParamSpec(
            'port',
            8080,
            'TCP port of the web server; 0 picks a free port (logged).',
            low=0,
            high=65535,
        ),
        ParamSpec(
            'token',
            '',
            'Secret the page must present (open http://host:port/#token=...); required when host '
            'is not a loopback address; at least 16 characters. Empty: no token on loopback.',
        ),
        ParamSpec(
            'max_fps', 10.0, 'Most frames per second sent to each browser.', low=0.5, high=60.0
        ),
        ParamSpec('jpeg_quality', 80, 'JPEG quality of the streamed frames.', low=10, high=100),
        ParamSpec(
            'image_buffer_frames',
            60,
            'Input images kept until tracked_objects with the same stamp arrive; must cover the '
            "frames that arrive during the tracker's latency.",
            low=1,
            high=1000,
        ),
        ParamSpec(
            'history_frames',
            100,
            'Frames sent to browsers that are kept for prompts (to scale their coordinates) and '
            'for export.',
            low=1,
            high=1000,
        ),
        ParamSpec(
            'service_timeout_sec',
            15.0,
            "How long a browser's request waits for the tracker's service before a timeout reply.",
            low=0.1,
            high=600.0,
        ),
    )
)
