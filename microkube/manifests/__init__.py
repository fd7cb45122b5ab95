"""Auto-deployed manifests and Helm charts: a folder whose files the cluster follows.

Like k3s's deploy controller and helm-controller, without their custom resources:

* :mod:`.folder` reads the folder into units (a manifest file, or a chart archive
  with its values file) with a digest each;
* :mod:`.documents` parses a manifest into objects (labelled as microkube's) and
  ``HelmChart`` requests;
* :mod:`.helm` drives the bundled helm; :mod:`.record` keeps what was applied
  and the report ``status`` shows;
* :mod:`.deployer` applies, upgrades, prunes and deletes; :mod:`.watch` runs it on
  every change of the folder (inotify) and at start.

Objects carry the label ``microkube.io/manifest=<file key>`` and a digest label,
so pruning and removal select them by label; Helm releases carry the same label.
"""
