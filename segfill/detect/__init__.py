"""Open-vocabulary detection: text -> boxes (GroundingDINO, OWL-ViT, OWLv2, SAM 3 through transformers).

``registry`` says which detectors the installed transformers can run (cheap, imports nothing heavy);
``loading`` turns a folder or hub id into a :class:`~segfill.detect.loading.LoadedDetector` (first use
downloads, with progress, through ``download``); ``detector.detect`` runs it; ``manager.DetectorManager``
applies SAM's device/unload policy; ``pipeline`` turns boxes into SAM masks.
"""
