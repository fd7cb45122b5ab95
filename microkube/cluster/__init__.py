"""Clustering: join tokens, the join string, and the cluster agent that admits nodes.

``microkube add-node`` writes a token (as a hash) and prints join strings;
the cluster agent (``python -m microkube.cluster.agent``, Ports.cluster_agent) checks a
joiner's token, reserves it while the join runs and spends it when the join
completes.
"""
