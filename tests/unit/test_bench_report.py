"""`make bench` renders what it measured; this keeps the bench importable and its report honest."""

from __future__ import annotations

from tests import bench, bench_addons, bench_memory


def test_report_names_every_figure() -> None:
    results = {
        "time_to_ready": {"runs_s": [9.0, 8.5, 9.5, 8.0, 8.8], "median_s": 8.8, "max_s": 9.5,
                          "first_after_drop_s": 9.0, "all_serving_median_s": 10.5,
                          "all_serving_runs_s": [10.0, 10.5, 11.0, 10.2, 10.9],
                          "timelines": [{}, {"etcd serving": 0.9, "API server ready": 2.25,
                                             "pod CIDR on the Node": 6.0,
                                             "Node Ready": 4.0}]},
        "idle_memory": {"total_rss_mb": 800.0, "total_pss_mb": 380.0, "total_pss_anon_mb": 250.0,
                        "total_pss_file_mb": 130.0, "network_policy_pss_mb": 21.5,
                        "processes": {"kubelet": {"rss_mb": 100.0, "pss_mb": 30.0,
                                                  "pss_anon_mb": 21.5, "pss_file_mb": 8.5,
                                                  "count": 1}}},
        "sqlite": {"runs_s": [4.2, 4.0, 4.4], "median_s": 4.2, "idle_memory": {
            "total_rss_mb": 300.0, "total_pss_mb": 280.0, "total_pss_anon_mb": 180.0,
            "total_pss_file_mb": 100.0,
            "processes": {"kine": {"rss_mb": 30.0, "pss_mb": 25.0, "pss_anon_mb": 12.0,
                                   "pss_file_mb": 13.0, "count": 1}}}},
        "status_latency": {"median_ms": 120, "max_ms": 150},
        "kubectl_get_pods_latency": {"median_ms": 250, "max_ms": 300},
        "status_latency_as_run": {"median_ms": 310, "max_ms": 350},
        "pki": {"fresh": {"median_s": 0.123, "max_s": 0.2},
                "again": {"median_s": 0.031, "max_s": 0.04}},
        "addons": {"dns": {"enable_command_s": 5.0, "working_after_s": 7.8, "within_goal": True,
                           "reenable_s": 1.4,
                           "memory_added_mb": {"rss_mb": 83.0, "pss_mb": 75.0}}},
        "snap": {"size_mb": 221.6},
        "manifest_to_object": {"median_s": 0.49, "max_s": 0.57, "runs_s": [0.49, 0.57]},
        "worker_join": {"join_to_ready_s": 9.5, "join_total_s": 11.2, "idle_memory": {
            "total_rss_mb": 310.0, "total_pss_mb": 140.0, "network_policy_pss_mb": 20.0,
            "processes": {"flanneld": {"rss_mb": 40.0, "pss_mb": 21.0, "count": 1}}}},
        "api_failover": {"gets": 200, "direct": {"median_ms": 1.2, "p95_ms": 2.0, "runs": 200},
                         "through_balancer": {"median_ms": 1.4, "p95_ms": 2.3, "runs": 200},
                         "balancer_switch_s": 0.4, "kill_to_pod_running_s": 6.1},
        "power_loss": {"single": {"nodes": 1, "processes_killed": 31, "ready_s": 12.3,
                                  "objects": 206, "lost": 0},
                       "site": {"nodes": 3, "processes_killed": 95, "ready_s": 41.5,
                                "objects": 206, "lost": 0}},
    }
    text = bench.render(results)
    assert "Node Ready, 5 cold starts: median 8.8 s, max 9.5 s" in text
    assert "every daemon serves" in text and "median 10.5 s" in text
    assert "first start after dropping the page cache: 9.0 s" in text
    assert "2.25 s  (+1.35)  API server ready" in text
    assert "4.00 s  (+1.75)  Node Ready" in text and "6.00 s  (+2.00)  pod CIDR" in text
    assert "before: median 6.5 s" in text and "k3s 25-40 s" in text
    assert "PSS 380.0 MB" in text and "kubelet" in text
    assert "NetworkPolicy enforcement (netpol): PSS 21.5 MB" in text
    assert "anonymous 250.0 MB, file-backed 130.0 MB" in text and "(anon   21.5, file    8.5)" in text
    assert "a node on SQLite (kine), 3 fresh starts: Node Ready median 4.2 s" in text
    assert "SQLite, no addons: RSS 300.0 MB, PSS 280.0 MB" in text and "target <= 200 MB" in text
    assert "kine" in text
    assert "status latency: median 120 ms" in text
    assert "as it is: median 310 ms, max 350 ms" in text
    assert "worker join to Node Ready: 9.5 s (target <= 15 s" in text
    assert "worker idle 60 s after Ready: PSS 140.0 MB, RSS 310.0 MB (target <= 180 MB" in text
    assert "flanneld" in text
    assert ("200 GETs direct median 1.2 ms (p95 2.0 ms), through it median 1.4 ms "
            "(p95 2.3 ms)") in text
    assert "a new pod Running on the worker 6.1 s (target <= 15 s); the balancer switched " \
           "after 0.4 s" in text
    assert "dns" in text and "7.8 s" in text and "enable again 1.4 s" in text
    assert "PKI generation, median of 5: fresh node 0.123 s" in text and "nothing to do 0.031 s" in text
    assert "221.6" in text
    assert "a manifest file written until its object exists: median 0.49 s, max 0.57 s" in text
    assert bench_addons.render(results["addons"]).startswith("addons")
    assert ("power loss, a single node (31 processes killed at once): Ready 12.3 s after start; "
            "0 of 206 objects lost") in text
    assert "power loss, three control planes and a worker (95 processes killed" in text and "41.5 s" in text


def test_pki_figures_time_a_real_generation() -> None:
    """The PKI figure runs the real ensure_node_pki (a renamed argument would break it here)."""
    figures = bench.pki_figures(runs=1)
    assert set(figures) == {"fresh", "again"}
    for v in figures.values():
        assert 0 < v["median_s"] <= v["max_s"]


def test_pss_split_reads_this_process() -> None:
    import os

    anon, filed = bench_memory.pss_split(os.getpid())
    assert anon > 1 and filed > 0  # a Python process: its heap, and the interpreter's code
