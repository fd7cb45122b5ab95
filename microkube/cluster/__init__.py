"""Clustering: join tokens, the join string, and the cluster agent that admits nodes.

``microkube add-node`` writes a token (as a hash) and prints join strings;
the cluster agent (``python -m microkube.cluster.agent``, Ports.cluster_agent) checks a
joiner's token, reserves it while the join runs and spends it when the join
completes.
"""

# Seconds a join token lives unless ``add-node --token-ttl`` says otherwise. Kept here,
# not in tokens.py, so the CLI can show it without importing the token store.
DEFAULT_TOKEN_TTL = 3600
