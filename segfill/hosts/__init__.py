"""The programs SegFill runs in. ``base`` is the protocol the UI and the REST API use; ``standalone`` is
``python -m segfill serve``; ``webui`` is the AUTOMATIC1111 WebUI and Forge (it never imports the WebUI's
``modules``: ``scripts/`` passes what it needs in)."""
