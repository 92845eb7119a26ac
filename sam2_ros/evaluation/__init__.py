"""Measurement tools for the tracking pipeline.

Semi-synthetic sequences with exact ground truth, accuracy metrics, and oracle doubles of the
segmenter and the detector for measuring the parts around SAM 2.
"""
