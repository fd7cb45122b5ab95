"""Check an external datastore answers before a node is set up on it.

A first start on a database that refuses the password, or a host that does not
answer, must fail with one line naming it and leave nothing behind. So before
anything is written:

- ``postgres://`` / ``mysql://``: kine itself (the binary the node will run) is
  started on a private socket with the setting and watched until it either
  serves (the database answered and kine's table is in place) or says why not;
- ``https://…`` (etcd): every endpoint's ``/health`` is asked over TLS with the
  given CA and client certificate.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time

from microkube.datastore import kine, settings
from microkube.datastore.settings import Datastore
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import Paths

# Seconds a database has to answer before the first start gives up on it.
CONNECT_TIMEOUT = 20.0
AVAILABLE = "Kine available at"


class DatastoreUnreachable(UsageError):
    """The datastore did not answer as set; the message names it (password masked)."""


def check(paths: Paths, store: Datastore, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise DatastoreUnreachable unless ``store`` answers; nothing to check for an
    embedded one. MicrokubeError if the kine binary is missing."""
    if store.uses_kine and store.kind != settings.SQLITE:
        _check_with_kine(paths, store, timeout)
    elif store.kind == settings.EXTERNAL_ETCD:
        _check_etcd(store, timeout)


def _check_with_kine(paths: Paths, store: Datastore, timeout: float) -> None:
    binary = paths.binary("kine")
    if not binary.exists():
        raise MicrokubeError(f"{binary} is missing; build it with 'make components'")
    with tempfile.TemporaryDirectory(prefix="microkube-kine-check-") as tmp:
        env = {**os.environ, **kine.environment(paths, store), "KINE_LOG_FORMAT": "json"}
        argv = [str(binary), f"--listen-address=unix://{tmp}/kine.sock",
                "--metrics-bind-address=0"]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
        try:
            problem = _watch(proc, timeout)
        finally:
            # SIGKILL, not SIGTERM: kine does not act on SIGTERM while it retries its first
            # ping (a refused start waited 5 s for it), and this kine serves nobody: it is
            # done once it said it serves (its table made) or why it cannot.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
    if problem is not None:
        raise DatastoreUnreachable(f"datastore {store.display()}: {problem}")


def _watch(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """None once kine serves; else why not (its first connection error, or its exit)."""
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    last = ""
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            proc.wait()
            return f"cannot connect: {last or f'kine exited with {proc.returncode}'}"
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            level, msg = _parse(raw)
            if AVAILABLE in msg:
                return None
            if level in ("error", "fatal") and msg:
                # kine retries a failed ping for minutes; the first failure says enough.
                return f"cannot connect: {msg}"
            if msg:
                last = msg
    return f"no answer within {timeout:.0f} s" + (f" (last: {last})" if last else "")


def _parse(raw: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return "", raw.decode(errors="replace").strip()
    if not isinstance(doc, dict):
        return "", ""
    # kine's JSON lines say "severity" and "message" (logrus's defaults: "level", "msg").
    # A message may span lines (pgx lists each address it tried): one line for the user.
    return (str(doc.get("severity", doc.get("level", ""))),
            " ".join(str(doc.get("message", doc.get("msg", ""))).split()))


def _check_etcd(store: Datastore, timeout: float) -> None:
    import ssl

    from microkube.probes import http_get, tls_context

    tls = store.tls
    try:
        if "ca" in tls:
            context = tls_context(tls["ca"], tls.get("cert"), tls.get("key"))
        else:
            # No CA given: the system's trust store, as any HTTPS client.
            context = ssl.create_default_context()
            if "cert" in tls:
                context.load_cert_chain(str(tls["cert"]), str(tls["key"]))
    except (ssl.SSLError, OSError) as e:
        raise DatastoreUnreachable(f"datastore {store.display()}: its TLS files cannot be "
                                   f"used ({getattr(e, 'reason', None) or e})") from None
    for url in store.endpoints:
        status, body = http_get(f"{url.rstrip('/')}/health", context=context,
                                timeout=min(timeout, 5.0))
        healthy = False
        if status == 200:
            try:
                healthy = json.loads(body).get("health") == "true"
            except (ValueError, AttributeError):
                healthy = False
        if not healthy:
            why = "does not answer" if status == 0 else f"is not healthy (HTTP {status})"
            raise DatastoreUnreachable(f"datastore {settings.mask(url)}: etcd {why}")
