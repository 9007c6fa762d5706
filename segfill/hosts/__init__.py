"""Hosts other than the standalone one (which lives in :mod:`segfill.host`).

:mod:`segfill.hosts.webui` runs SegFill inside the AUTOMATIC1111 WebUI and Forge. It never imports the
WebUI's ``modules``: ``scripts/`` passes what it needs in (:class:`segfill.hosts.webui.WebUIBindings`).
"""
