"""Inpainting backends: one protocol (:mod:`segfill.backends.base`), several implementations.

Backends with heavy optional dependencies are imported lazily through :func:`create_backend`.
"""
