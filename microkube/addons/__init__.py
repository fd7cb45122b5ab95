"""Addons: repositories of templated manifests plus the images they need.

A repository is a folder with an ``addons.yaml`` index and one folder per
addon (jinja2 templates and an ``addon.py`` with its enable/disable logic).
The core repository ships in ``$SNAP/addons``; users add more with
``microkube addons repo add``. Enabling never pulls an image: each addon's
images ship as OCI archives and are imported when it is enabled.
"""
