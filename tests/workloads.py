"""Manifests the tests and benchmarks run: small web servers and clients from the busybox image.

Every image is the locally built busybox, never pulled (imagePullPolicy: Never).
"""

from __future__ import annotations

from microkube.images.names import BUSYBOX_IMAGE


def _httpd_container(body: str) -> str:
    # `body` is shell text: "hello from $(hostname)" tells replicas apart.
    return f"""
      - name: httpd
        image: {BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command:
        - sh
        - -c
        - mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -v -p 8080 -h /www
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}"""


def service(name: str, service_type: str = "ClusterIP") -> str:
    """A Service of ``service_type`` on port 80 for the pods labelled app=``name`` (8080)."""
    return f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: {service_type}
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def web_deployment(name: str, body: str, replicas: int = 1,
                   service_type: str = "ClusterIP") -> str:
    """A Deployment of busybox httpd serving ``body`` on 8080, and a Service (of
    ``service_type``) on port 80."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:{_httpd_container(body)}
""" + service(name, service_type)


def _on_node(node: str | None) -> str:
    return f"\n  nodeName: {node}" if node else ""


def web_pod(name: str, body: str, node: str | None = None) -> str:
    """One bare Pod serving ``body`` (on Node ``node`` if given), and its Service."""
    container = _httpd_container(body).replace("\n    ", "\n")  # pod spec is two levels shallower
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  terminationGracePeriodSeconds: 0{_on_node(node)}
  containers:{container}
""" + service(name)


def client_pod(name: str, node: str | None = None) -> str:
    """A pod that says it started and then sleeps, to exec into (on Node ``node`` if given)."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 0{_on_node(node)}
  containers:
  - name: {name}
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo {name} started; exec sleep 100000"]
"""


PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: notes}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
"""


def pvc_pod(name: str, command: str) -> str:
    """A pod that runs the shell ``command`` with the claim ``notes`` (PVC) at /data."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: [sh, -c, "{command}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: notes}}
"""
