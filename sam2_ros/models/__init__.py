"""The model adapters: SAM 2 (loading, the streaming tracker) and YOLOv10 (the detector).

The only packages that import torch, sam2 and ultralytics. May import sam2_ros.core.
"""
