"""The datastore around the embedded etcd: Secrets encrypted at rest, key rotation,
backups and restores."""
