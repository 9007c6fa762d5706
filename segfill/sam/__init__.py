"""Segment Anything inside SegFill: model registry, folders, downloads, safe loading, device management,
sessions and segment maps.

Kept empty on purpose: importing ``segfill.sam`` (or ``registry``, ``folders``, ``download``, ``manager``) never
imports torch; only loading a model does.
"""
