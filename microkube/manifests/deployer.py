"""One pass over the deploy folder: apply what is new or changed, prune what a file no
longer holds, delete what a removed file made, and report each file's outcome.

A file's objects go in by server-side apply under the field manager
``microkube-manifests``, labelled ``microkube.io/manifest=<key>`` and
``microkube.io/manifest-digest=<digest>``; once they are in, the objects of the
same key with another digest (what the file held before) are deleted by
selector, over every kind the file ever made. A broken file is logged, reported
and posted as a Warning Event on this Node; it changes nothing in the cluster,
and the other files are still applied.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

# PyYAML (~2 MB) is imported by the functions that read or write manifests, not here: the
# cluster agent runs the deploy folder's deployer for the node's lifetime, idle most of it.
from microkube.errors import MicrokubeError
from microkube.kube.kubectl import Kubectl, KubectlError
from microkube.manifests import folder, record
from microkube.manifests.documents import (
    DIGEST_LABEL,
    MANIFEST_LABEL,
    ChartRequest,
    ManifestError,
    Parsed,
    labelled,
    parse,
    resource_arg,
    short_digest,
)
from microkube.manifests.helm import Helm
from microkube.manifests.record import APPLIED, FAILED, Outcome, Report, UnitState
from microkube.paths import Paths

FIELD_MANAGER = "microkube-manifests"
EVENT_SOURCE = "microkube-manifests"
CHART_NAMESPACE = "default"
log = logging.getLogger("microkube.manifests")


@dataclass(frozen=True)
class Plan:
    """What a unit asks for now, and the digest of everything it was read from."""

    digest: str
    parsed: Parsed


def chart_release(unit: folder.Unit) -> str:
    """The release name of a chart archive ``NAME.tgz``: NAME, lowercased, made a release name.

    Raises ManifestError when nothing usable is left.
    """
    stem = unit.name.removesuffix(folder.CHART_SUFFIX).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:53].strip("-")
    if not name:
        raise ManifestError(f"{unit.name}: no release name can be made of this file name")
    return name


def plan(unit: folder.Unit, base: Path) -> Plan:
    """Read ``unit`` (from the folder ``base``) into what it asks for.

    Raises ManifestError for a file that cannot be used, OSError for one that cannot be read.
    """
    import yaml

    if unit.kind == "chart":
        values = unit.values_file.read_text() if unit.values_file else ""
        if values:
            try:
                yaml.safe_load(values)
            except yaml.YAMLError:
                raise ManifestError(f"{unit.values_file.name if unit.values_file else ''}: "
                                    "not valid YAML") from None
        request = ChartRequest(release=chart_release(unit), namespace=CHART_NAMESPACE,
                               chart=str(unit.path), values=values)
        return Plan(unit.digest(), Parsed(charts=[request]))
    try:
        text = unit.path.read_text()
    except UnicodeDecodeError:
        raise ManifestError(f"{unit.name}: not a text file") from None
    parsed = parse(text, unit.name)
    extra = b""
    for chart in parsed.charts:
        local = chart.local_chart(base)
        if local is not None:
            try:
                extra += local.read_bytes()
            except OSError as e:
                raise ManifestError(f"{unit.name}: HelmChart {chart.release}: cannot read its "
                                    f"chart {local} ({e.strerror})") from None
    return Plan(unit.digest(extra), parsed)


class Deployer:
    """Keeps the cluster in line with the deploy folder of the node ``node_name``."""

    def __init__(self, paths: Paths, node_name: str, kubectl: Kubectl | None = None,
                 helm: Helm | None = None) -> None:
        self.paths = paths
        self.folder = paths.manifests_dir
        self.node_name = node_name
        self.kubectl = kubectl or Kubectl(paths)
        self.helm = helm or Helm(paths)
        self.state = record.load_state(paths.manifests_state_file)
        self.report = Report(str(self.folder))

    # --- one pass -------------------------------------------------------------------
    def sync(self, everything: bool = False) -> None:
        """One pass over the folder; ``everything`` re-applies unchanged files too (at start).

        Files that failed are tried again on every pass. Never raises for a file's
        failure: that is logged, reported and posted as an Event.
        """
        units = {u.name: u for u in folder.scan(self.folder)}
        # Files first, removals after: an object moved from a removed file into another
        # is relabelled by the apply, so the removal no longer selects it.
        for unit in units.values():
            self._sync_unit(unit, everything)
        for name in sorted(set(self.state) - set(units)):
            self._remove(name)
        for name in set(self.report.files) - set(units) - set(self.state):
            del self.report.files[name]
        record.save_report(self.paths.manifests_report_file, self.report)

    def _sync_unit(self, unit: folder.Unit, everything: bool) -> None:
        before = self.state.get(unit.name) or UnitState()
        last = self.report.files.get(unit.name)
        try:
            wanted = plan(unit, self.folder)
        except ManifestError as e:
            self._failed(unit.name, str(e))
            return
        except OSError as e:
            if isinstance(e, FileNotFoundError) and e.filename == str(unit.path):
                return  # removed while we looked: the next pass deletes what it made
            self._failed(unit.name, f"{unit.name}: cannot be read ({e.strerror})")
            return
        if (not everything and wanted.digest == before.digest and last is not None
                and last.state == APPLIED):
            return
        try:
            counts = self._apply(unit, wanted, before)
        except MicrokubeError as e:
            self._failed(unit.name, f"{unit.name}: {e}")
            return
        changed = last is None or last.state != APPLIED or wanted.digest != before.digest
        self._applied(unit.name, counts, changed)

    def _apply(self, unit: folder.Unit, wanted: Plan, before: UnitState) -> str:
        """Apply, install, then prune; the kinds are recorded before anything changes, so a
        pass that stops halfway still prunes them next time. Returns what was done, in words."""
        import yaml

        key, parsed = unit.key, wanted.parsed
        kinds = before.kinds | parsed.kinds()
        self._record(unit.name, UnitState(before.digest, kinds))
        if parsed.objects:
            manifest = yaml.safe_dump_all(
                [labelled(o, key, wanted.digest, unit.name) for o in parsed.objects],
                sort_keys=False)
            self.kubectl.apply(manifest, what="applying", field_manager=FIELD_MANAGER)
        for chart in parsed.charts:
            self.helm.install(chart, self.folder, key)
        stale = f"{MANIFEST_LABEL}={key},{DIGEST_LABEL}!={short_digest(wanted.digest)}"
        self._delete(kinds, stale)
        releases = {(c.release, c.namespace) for c in parsed.charts}
        for release, namespace in sorted(self.helm.releases(key) - releases):
            self.helm.uninstall(release, namespace)
        self._record(unit.name, UnitState(wanted.digest, parsed.kinds()))
        return (f"{len(parsed.objects)} object(s)"
                + (f", {len(parsed.charts)} chart(s)" if parsed.charts else ""))

    def _remove(self, name: str) -> None:
        """Delete what a file that is gone made: its objects and releases, by label."""
        key = folder.label_key(name)
        try:
            self._delete(self.state[name].kinds, f"{MANIFEST_LABEL}={key}")
            for release, namespace in sorted(self.helm.releases(key)):
                self.helm.uninstall(release, namespace)
        except MicrokubeError as e:
            self._failed(name, f"{name} was removed, but what it made was not deleted: {e}")
            return
        del self.state[name]
        record.save_state(self.paths.manifests_state_file, self.state)
        self.report.files.pop(name, None)
        log.info("%s removed: deleted what it made", name)

    def _delete(self, kinds: set[tuple[str, str]], selector: str) -> None:
        """Delete the objects of ``kinds`` matching ``selector``; kinds the server no longer
        knows (a CRD removed) are skipped."""
        resources = sorted({resource_arg(a, k) for a, k in kinds})
        try:
            self.kubectl.delete_selected(resources, selector, what="pruning")
        except KubectlError:
            for resource in resources:  # one at a time, to tell which kind is gone
                try:
                    self.kubectl.delete_selected([resource], selector, what="pruning")
                except KubectlError as e:
                    if "doesn't have a resource type" not in str(e):
                        raise

    def _record(self, name: str, state: UnitState) -> None:
        self.state[name] = state
        record.save_state(self.paths.manifests_state_file, self.state)

    # --- outcomes ---------------------------------------------------------------------
    def _applied(self, name: str, what: str, changed: bool) -> None:
        if changed:
            log.info("%s applied: %s", name, what)
        last = self.report.files.get(name)
        since = last.since if last is not None and last.state == APPLIED and not changed else time.time()
        self.report.files[name] = Outcome(APPLIED, f"applied {what}", since)

    def _failed(self, name: str, message: str) -> None:
        last = self.report.files.get(name)
        if last is not None and last.state == FAILED and last.message == message:
            return  # said already
        log.warning("%s", message)
        self.report.files[name] = Outcome(FAILED, message, time.time())
        self._post_event(message)

    def _post_event(self, message: str) -> None:
        """A Warning Event on this Node (``kubectl describe node``, ``kubectl get events``);
        a failure to post is logged, not raised."""
        import yaml

        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": "microkube-manifest-", "namespace": "default"},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                               "uid": self.node_name},
            "reason": "ManifestFailed", "message": message[:1024], "type": "Warning",
            "source": {"component": EVENT_SOURCE, "host": self.node_name},
            "reportingComponent": EVENT_SOURCE, "reportingInstance": self.node_name,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            self.kubectl.run(["create", "-f", "-"], input=yaml.safe_dump(event),
                             what="posting an Event", timeout=30)
        except KubectlError as e:
            log.warning("could not post an Event: %s", e)
