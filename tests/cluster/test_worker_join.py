"""A real control plane and a real worker on a test LAN: the worker joins, runs pods, and holds
no cluster secret; bad joins are refused and change nothing.

One cluster (tests/multinode.py) is shared by the module: the control plane
starts, the worker joins once, and a third node that is never started tries
the joins that must be refused. Last, the membership changes: the third node's
join is killed half-way and undone by the agent, then retried; it is killed
and removed with ``remove-node --force``, and joins again with the same name
and address; then the worker leaves and comes back as a fresh single node, which joins
again (its own cluster discarded) once it holds nothing a user made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from tests import workloads
from tests.multinode import Cluster, cluster, kill_machine, kubectl_as, replace_machine
from tests.testnode import TestNode, require_root_and_node_built

CP, WORKER, SPARE = "mk-cp", "mk-w1", "mk-w2"


@dataclass
class Nodes:
    lan: Cluster
    cp: TestNode
    worker: TestNode
    spare: TestNode  # never started: the joins that must be refused come from it
    join_seconds: float
    join_output: str
    used_join_string: str


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    require_root_and_node_built()
    with cluster(Path(tmp_path_factory.mktemp("lan"))) as lan:
        cp = lan.add(CP)
        worker = lan.add(WORKER)
        spare = lan.add(SPARE)
        cp.start()
        join_string = lan.join_string(cp)
        began = time.monotonic()
        out = lan.join_worker(worker, join_string)
        yield Nodes(lan, cp, worker, spare, time.monotonic() - began,
                    out.stdout + out.stderr, join_string)


def _ready_nodes(cp: TestNode) -> dict[str, bool]:
    doc = cp.kubectl_json("get", "nodes")
    return {n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in n["status"]["conditions"]) for n in doc["items"]}


# --- the join ------------------------------------------------------------------------------


def test_the_worker_joins_with_progress_and_is_ready(nodes: Nodes) -> None:
    out = nodes.join_output
    for line in ("the cluster CA matches the join string's fingerprint",
                 f"the token is reserved for {WORKER}", f"node {WORKER} is Ready",
                 f"{WORKER} joined the cluster as a worker"):
        assert line in out, out
    assert _ready_nodes(nodes.cp) == {CP: True, WORKER: True}
    # The worker runs only what a worker runs.
    state = nodes.worker.supervisor_state()
    assert state is not None
    assert sorted(state["daemons"]) == ["apilb", "containerd", "kubelite"]
    # Its clients reach the API through its load balancer on loopback (TLS passes through).
    for stem in ("kubelet", "proxy", "flannel", "netpol"):
        kubeconfig = yaml.safe_load((nodes.worker.root / "data" / "credentials" /
                                     f"{stem}.config").read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    # ... and its kubelite runs the kubelet, kube-proxy, the pod network and the policy
    # controller, nothing that holds cluster state.
    spec = json.loads((nodes.worker.root / "common" / "run" / "kubelite.json").read_text())
    assert sorted(spec["parts"]) == ["flanneld", "kube-proxy", "kubelet", "netpol"]
    print(f"\njoin to Node Ready: {nodes.join_seconds:.1f} s")


def test_status_says_worker_on_the_worker_and_lists_nodes_on_the_control_plane(
        nodes: Nodes) -> None:
    st = yaml.safe_load(nodes.worker.run("status", "--format", "yaml").stdout)
    assert st["role"] == "worker"
    assert st["control-plane"] == f"https://{nodes.cp.ip}:16443"
    assert st["api-load-balancer"] == {"current": f"{nodes.cp.ip}:16443",
                                       "servers": [f"{nodes.cp.ip}:16443"],
                                       "healthy": [f"{nodes.cp.ip}:16443"]}
    assert st["microkube"]["ready"] is True
    pretty = nodes.worker.run("status").stdout
    assert f"role: worker of the control plane at https://{nodes.cp.ip}:16443" in pretty
    cp = yaml.safe_load(nodes.cp.run("status", "--format", "yaml").stdout)
    assert cp["role"] == "control-plane"
    assert cp["nodes"] == [
        {"name": CP, "role": "control-plane", "ready": True, "datastore": "voter"},
        {"name": WORKER, "role": "worker", "ready": True, "datastore": "none"}]
    assert cp["high-availability"] == {"enabled": False, "voters": [CP], "standbys": []}


# --- workloads across nodes ----------------------------------------------------------------

SPREAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 2
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 0
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app: spread}}
      containers:
      - name: httpd
        image: IMAGE
        imagePullPolicy: Never
        command: [sh, -c, "mkdir -p /www && echo spread on $(hostname) > /www/index.html
          && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
"""


def _running_pods(cp: TestNode, selector: str) -> list[dict[str, str]]:
    doc = cp.kubectl_json("get", "pods", "-l", selector)
    return [{"node": p["spec"].get("nodeName", ""), "ip": p["status"].get("podIP", ""),
             "name": p["metadata"]["name"]}
            for p in doc["items"]
            if p["status"].get("phase") == "Running"
            and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]


def _wget(cp: TestNode, client: str, url: str) -> str:
    # Debian's busybox wget crashes with -T; kubectl's timeout bounds the wait instead.
    return cp.kubectl("exec", client, "--", "wget", "-qO-", url, timeout=20)


@pytest.fixture(scope="module")
def workload(nodes: Nodes) -> Iterator[dict[str, object]]:
    from microkube.images.names import BUSYBOX_IMAGE

    cp = nodes.cp
    cp.apply(SPREAD.replace("IMAGE", BUSYBOX_IMAGE))
    cp.apply(workloads.web_pod("on-worker", "hello from the worker", node=WORKER))
    cp.apply(workloads.client_pod("client-cp", node=CP))
    cp.run("kubectl", "patch", "service", "on-worker", "-p",
           '{"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, '
           '"nodePort": 30080}]}}')
    spread = cp.wait_for("both replicas Running and Ready",
                         lambda: (pods := _running_pods(cp, "app=spread")) and len(pods) == 2
                         and pods, timeout=180)
    cp.wait_for("the worker's web pod Ready", lambda: _running_pods(cp, "app=on-worker"),
                timeout=120)
    cp.wait_for("the client pod Running", lambda: "client-cp started" in cp.kubectl(
        "logs", "client-cp"), timeout=120)
    yield {"spread": spread}


def test_a_deployment_spreads_over_both_nodes(workload: dict[str, object]) -> None:
    spread = workload["spread"]
    assert isinstance(spread, list)
    assert sorted(p["node"] for p in spread) == [CP, WORKER]


def test_pod_to_pod_traffic_crosses_nodes_over_vxlan(nodes: Nodes,
                                                     workload: dict[str, object]) -> None:
    spread = workload["spread"]
    assert isinstance(spread, list)
    remote = next(p for p in spread if p["node"] == WORKER)
    body = nodes.cp.wait_for("the worker's pod answers the control plane's pod",
                             lambda: _wget(nodes.cp, "client-cp", f"http://{remote['ip']}:8080/"),
                             timeout=60)
    assert body.strip() == f"spread on {remote['name']}"
    # It went over flannel's VXLAN link: the worker's pod subnet is routed through flannel.1.
    route = subprocess_out(nodes.cp.in_netns(["ip", "route", "get", remote["ip"]]))
    assert "dev flannel.1" in route, route


def test_a_cluster_ip_service_on_the_worker_answers_a_pod_on_the_control_plane(
        nodes: Nodes, workload: dict[str, object]) -> None:
    svc = nodes.cp.kubectl_json("get", "service", "on-worker")
    body = nodes.cp.wait_for("the ClusterIP answers", lambda: _wget(
        nodes.cp, "client-cp", f"http://{svc['spec']['clusterIP']}/"), timeout=60)
    assert body.strip() == "hello from the worker"


def test_a_node_port_answers_on_the_workers_address(nodes: Nodes,
                                                    workload: dict[str, object]) -> None:
    # From the control plane's namespace, a host on the LAN, to the worker's address.
    url = f"http://{nodes.worker.ip}:30080/"
    fetch = ["python3", "-c", f"import urllib.request; print(urllib.request.urlopen("
             f"'{url}', timeout=3).read().decode())"]
    body = nodes.cp.wait_for("the NodePort answers", lambda: subprocess_out(
        nodes.cp.in_netns(fetch)), timeout=60)
    assert body.strip() == "hello from the worker"


def subprocess_out(argv: list[str]) -> str:
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


# --- what the worker holds ----------------------------------------------------------------

_PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----",
                      re.S)
_KEY_DATA = re.compile(rb"client-key-data:\s*([A-Za-z0-9+/=]+)")


def _public_keys_of_private_keys_in(root: Path, skip: tuple[Path, ...] = ()) -> dict[bytes, Path]:
    """Every private key found under ``root`` (PEM files and kubeconfigs), by its public key."""
    found = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink() or any(path.is_relative_to(s) for s in skip):
            continue
        if path.stat().st_size > 1_000_000:
            continue
        try:
            data = path.read_bytes()
        except OSError:  # a kernel file on a mount under the node's run directory
            continue
        blobs = _PEM_KEY.findall(data) + [base64.b64decode(m) for m in _KEY_DATA.findall(data)]
        for blob in blobs:
            key = load_pem_private_key(blob, password=None)
            found[key.public_key().public_bytes(Encoding.DER,
                                                PublicFormat.SubjectPublicKeyInfo)] = path
    return found


def test_no_ca_key_service_account_key_or_etcd_credential_on_the_worker(nodes: Nodes) -> None:
    cp_keys = _public_keys_of_private_keys_in(nodes.cp.root / "data")
    cp_only = {pub: path for pub, path in cp_keys.items()
               if path.name in ("ca.key", "front-proxy-ca.key", "serviceaccount.key",
                                "apiserver-client.key", "server.key")
               or path.stem == "admin" or "etcd" in path.parts}  # admin.config, admin.pem
    names = {p.name for p in cp_only.values()}
    assert names >= {"ca.key", "serviceaccount.key"} and names & {"admin.config", "admin.pem"}
    worker_root = nodes.worker.root
    worker_keys = _public_keys_of_private_keys_in(
        worker_root, skip=(worker_root / "common" / "var" / "lib",))
    # kubelet client and serving, kube-proxy, flannel, the network policy controller
    assert len(worker_keys) == 5, worker_keys
    leaked = {str(worker_keys[pub]): str(cp_only[pub]) for pub in worker_keys if pub in cp_only}
    assert not leaked
    data = worker_root / "data"
    names = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    assert not {n for n in names if n.endswith(("ca.key", "serviceaccount.key"))
                or n.startswith("certs/etcd") or "admin.config" in n}, names
    assert not (data / "var" / "etcd").exists()


def test_the_workers_kubelet_cannot_read_a_secret_of_a_pod_on_another_node(nodes: Nodes) -> None:
    cp = nodes.cp
    for name, node in (("secret-cp", CP), ("secret-w", WORKER)):
        cp.run("kubectl", "create", "secret", "generic", name, "--from-literal=k=v")
        cp.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: uses-{name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: main, image: {workloads.BUSYBOX_IMAGE}, imagePullPolicy: Never,
      command: [sleep, "100000"], volumeMounts: [{{name: s, mountPath: /s}}]}}
  volumes: [{{name: s, secret: {{secretName: {name}}}}}]
""")
    kubelet = nodes.worker.root / "data" / "credentials" / "kubelet.config"
    # The secret of the worker's own pod is readable by its kubelet (so the refusal is real).
    nodes.worker.wait_for("the worker's kubelet may read its own pod's secret", lambda: kubectl_as(
        nodes.worker, kubelet, "get", "secret", "secret-w", "-o", "name").returncode == 0,
        timeout=60)
    denied = kubectl_as(nodes.worker, kubelet, "get", "secret", "secret-cp")
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr
    assert "no relationship found between node 'mk-w1' and this object" in denied.stderr


# --- joins that must be refused -------------------------------------------------------------


def _refused(node: TestNode, *args: str) -> str:
    proc = node.run(*args, check=False, timeout=120)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines[-1] if lines else ""


def _untouched(node: TestNode) -> None:
    data = node.root / "data"
    assert not (data / "var" / "node.yaml").exists()
    assert not (data / "credentials").exists() or not any((data / "credentials").iterdir())
    assert not node.processes()


def _agent_requests_from(cp: TestNode, ip: str) -> list[str]:
    log = cp.root / "common" / "var" / "log" / "cluster-agent.log"
    return [line for line in log.read_text().splitlines() if f"agent.access INFO {ip} " in line]


def test_a_reused_token_is_refused(nodes: Nodes) -> None:
    line = _refused(nodes.spare, "join", nodes.used_join_string, "--worker")
    assert f"the token was already used to join node '{WORKER}'" in line
    _untouched(nodes.spare)


def test_an_expired_token_is_refused(nodes: Nodes) -> None:
    js = nodes.lan.join_string(nodes.cp, "--token-ttl", "1")
    time.sleep(1.5)
    line = _refused(nodes.spare, "join", js, "--worker")
    assert "the token expired at" in line
    _untouched(nodes.spare)


def test_a_wrong_fingerprint_is_refused_before_the_agent_sees_the_token(nodes: Nodes) -> None:
    js = nodes.lan.join_string(nodes.cp)
    token = js.split("/")[1]
    wrong = js[: -64] + ("0" * 64 if not js.endswith("0" * 64) else "1" * 64)
    before = _agent_requests_from(nodes.cp, nodes.spare.ip)
    line = _refused(nodes.spare, "join", wrong, "--worker")
    assert "the token was not sent" in line
    after = _agent_requests_from(nodes.cp, nodes.spare.ip)[len(before):]
    assert after and all('"GET /v1/ca HTTP/1.1"' in r for r in after), after
    tokens = (nodes.cp.root / "data" / "credentials" / "cluster-tokens.json").read_text()
    assert token not in tokens
    _untouched(nodes.spare)


def test_a_name_that_is_already_a_member_is_refused_and_the_token_stays_usable(
        nodes: Nodes) -> None:
    js = nodes.lan.join_string(nodes.cp)
    nodes.spare.extra_env["MICROKUBE_NODE_NAME"] = WORKER
    try:
        line = _refused(nodes.spare, "join", js, "--worker")
    finally:
        del nodes.spare.extra_env["MICROKUBE_NODE_NAME"]
    assert f"a node named {WORKER} is already a member" in line
    assert f"microkube remove-node {WORKER} --force" in line
    _untouched(nodes.spare)
    doc = yaml.safe_load((nodes.cp.root / "data" / "credentials" / "cluster-tokens.json")
                         .read_text())
    token = js.split("/")[1]
    record = next(r for r in doc["tokens"] if r["hash"] == hashlib.sha256(token.encode()).hexdigest())
    assert record["reserved_by"] is None and record["consumed_by"] is None


def test_joins_a_node_may_not_make_are_refused_in_one_line(nodes: Nodes) -> None:
    js = nodes.lan.join_string(nodes.cp)
    assert "cannot join itself" in _refused(nodes.cp, "join", js, "--worker")
    assert "already a worker" in _refused(nodes.worker, "join", js, "--worker")
    assert "is not an IP address" in _refused(nodes.spare, "join", "nowhere:25000/x/y", "--worker")
    _untouched(nodes.spare)


# --- a failed join leaves nothing behind; leave and remove-node ------------------------------
# These change the membership, so they run last, in this order: the spare joins (killed, then
# retried), is killed and removed by force, joins again; then the worker leaves.


def _node_names(cp: TestNode) -> set[str]:
    return {n["metadata"]["name"] for n in cp.kubectl_json("get", "nodes")["items"]}


def _token_record(cp: TestNode, join_string: str) -> dict[str, object]:
    doc = yaml.safe_load((cp.root / "data" / "credentials" / "cluster-tokens.json").read_text())
    wanted = hashlib.sha256(join_string.split("/")[1].encode()).hexdigest()
    record: dict[str, object] = next(r for r in doc["tokens"] if r["hash"] == wanted)
    return record


def _agent_log(cp: TestNode) -> str:
    return (cp.root / "common" / "var" / "log" / "cluster-agent.log").read_text()


def test_a_joiner_killed_mid_join_leaves_nothing_behind_and_its_retry_succeeds(
        nodes: Nodes, tmp_path: Path) -> None:
    cp, spare = nodes.cp, nodes.spare
    before = _node_names(cp)
    assert before == {CP, WORKER}
    js = nodes.lan.join_string(cp)
    with open(tmp_path / "join.log", "w") as out:
        joiner = subprocess.Popen(spare.in_netns([*spare.cli, "join", js, "--worker",
                                                  "--timeout", "30"]),
                                  env=spare.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            cp.wait_for("the joiner's kubelet to register its Node",
                        lambda: SPARE in _node_names(cp), timeout=60, every=0.2)
            assert joiner.poll() is None, "the join completed before it could be killed"
        finally:
            joiner.kill()
            joiner.wait()
    kill_machine(spare)
    assert _token_record(cp, js)["admitted_at"] is not None
    # At the deadline the joiner announced (30 s, plus the agent's grace), the agent undoes it.
    cp.wait_for("the Nodes as before the join", lambda: _node_names(cp) == before, timeout=90)
    record = _token_record(cp, js)
    assert record["reserved_by"] is None and record["consumed_by"] is None, record
    assert f"the join of {SPARE} ({spare.ip}) did not complete by its deadline; removed the " \
           f"Node {SPARE}" in _agent_log(cp)
    # The machine comes back; the same join string joins it, cleaning up what the crash left.
    out = nodes.lan.join_worker(spare, js)
    assert "an earlier join of this node did not finish" in out.stderr, out.stderr
    assert _ready_nodes(cp) == {CP: True, WORKER: True, SPARE: True}


def test_remove_node_force_takes_out_a_killed_worker_that_then_joins_again(nodes: Nodes) -> None:
    cp, spare = nodes.cp, nodes.spare
    assert SPARE in _node_names(cp)
    kill_machine(spare)
    assert "no node of this cluster is named or has the address no-such-node" in _refused(
        cp, "remove-node", "no-such-node")
    # Its Node still says Ready until the controller notices: only --force takes it.
    assert f"node {SPARE} is Ready: run 'microkube leave' on it first" in _refused(
        cp, "remove-node", SPARE)
    out = cp.run("remove-node", spare.ip, "--force")  # found by its address
    assert f"removed the Node {SPARE}" in out.stdout
    assert _node_names(cp) == {CP, WORKER}
    assert "no node of this cluster is named" in _refused(cp, "remove-node", SPARE, "--force")
    replace_machine(spare)
    nodes.lan.join_worker(spare, nodes.lan.join_string(cp))
    assert _ready_nodes(cp) == {CP: True, WORKER: True, SPARE: True}


def test_a_worker_that_leaves_is_gone_and_runs_as_a_fresh_single_node(nodes: Nodes) -> None:
    cp, worker = nodes.cp, nodes.worker
    line = _refused(cp, "leave")
    assert "this node is the cluster's only voting control plane" in line
    assert f"{WORKER}, {SPARE} depend on it" in line
    old_ca = (worker.root / "data" / "certs" / "ca.crt").read_bytes()
    assert old_ca == (cp.root / "data" / "certs" / "ca.crt").read_bytes()
    out = worker.run("leave", timeout=300)
    assert f"the control plane removed the Node {WORKER}" in out.stderr, out.stderr
    assert f"{WORKER} left the cluster and runs as a fresh single node" in out.stdout
    assert _node_names(cp) == {CP, SPARE}
    assert f"{WORKER} left: removed the Node {WORKER}" in _agent_log(cp)
    worker.run("status", "--wait-ready", "--timeout", "240", timeout=300)
    st = yaml.safe_load(worker.run("status", "--format", "yaml").stdout)
    assert st["role"] == "control-plane"
    assert st["nodes"] == [{"name": WORKER, "role": "control-plane", "ready": True,
                           "datastore": "voter"}]
    new_ca = (worker.root / "data" / "certs" / "ca.crt").read_bytes()
    assert new_ca != old_ca


def test_a_worker_that_left_joins_again_discarding_its_own_cluster(nodes: Nodes) -> None:
    cp, worker = nodes.cp, nodes.worker
    # The fresh single node that leave made holds what a user made: the join refuses to
    # discard it, naming it, and changes nothing.
    worker.run("kubectl", "create", "deployment", "kept", f"--image={workloads.BUSYBOX_IMAGE}",
               "--replicas=0")
    js = nodes.lan.join_string(cp)
    line = _refused(worker, "join", js, "--worker")
    assert "this node's own cluster holds what a user made, which joining would discard: " \
           "deployment default/kept; run 'microkube reset' first, or join with --force" in line
    assert worker.kubectl("get", "deployment", "kept", "-o", "name").strip() \
        == "deployment.apps/kept"
    # Once it is gone, the same join string joins the node again, same name and address.
    worker.run("kubectl", "delete", "deployment", "kept")
    out = nodes.lan.join_worker(worker, js)
    assert "discarding the single-node cluster this node ran on its own (its CA, " \
           "certificates, datastore and settings)" in out.stderr, out.stderr
    assert f"node {WORKER} is Ready" in out.stderr
    assert _ready_nodes(cp) == {CP: True, WORKER: True, SPARE: True}
    assert (worker.root / "data" / "certs" / "ca.crt").read_bytes() \
        == (cp.root / "data" / "certs" / "ca.crt").read_bytes()
    st = yaml.safe_load(worker.run("status", "--format", "yaml").stdout)
    assert st["role"] == "worker" and st["microkube"]["ready"] is True
