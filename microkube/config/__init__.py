"""Node configuration: the node's identity, argument files, rendered daemon configs."""
