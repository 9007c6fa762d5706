"""SegFill inside the AUTOMATIC1111 WebUI (1.10.x) and Forge.

The diffusion is always the WebUI's: the engine plans canvas, masks and tiles, and every tile is one
``processing.process_images`` call on a ``StableDiffusionProcessingImg2Img`` with the user's checkpoint.
Nothing here imports the WebUI's ``modules``; ``scripts/`` passes what it needs in through
:class:`~segfill.hosts.webui.bindings.WebUIBindings`, so everything runs under test with small fakes.

- ``bindings``       what ``scripts/`` passes in
- ``checkpoints``    is the loaded checkpoint an inpainting model; which installed ones are
- ``locking``        the WebUI's queue lock, re-entrant per thread
- ``tile_backend``   one tile = one ``process_images`` call; the outpaint plan run through it
- ``infotext_patch`` a tile's infotext turned into the whole job's
- ``host``           ``WebUIHost`` for the tab and the REST API; the one host per process
- ``script``         the img2img "SegFill outpaint" script's argument and ``run``
"""
