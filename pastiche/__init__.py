"""Pastiche: GAN style transfer served on NVIDIA Triton Inference Server.

This package holds what every stage shares: the served tensor contract, model metadata keys
and the ``pastiche`` command line. Each stage of the flow lives in its own top-level package:
``export`` (checkpoint → ONNX), ``deploy`` (repository, Triton, local stack), ``gateway``
(REST API and S3 storage) and ``benchmarks``.
"""
