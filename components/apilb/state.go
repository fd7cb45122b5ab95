package main

// Files: the saved list of API servers (read at start, rewritten when the cluster's list
// changes, never empty) and the state file that says which server is in use.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
)

// ServerList is the saved list's document: {"servers": ["10.0.0.5:16443", ...]}.
type ServerList struct {
	Servers []string `json:"servers"`
}

// ReadServers returns the saved list; nil if the file is missing or unreadable.
func ReadServers(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc ServerList
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	return doc.Servers
}

// WriteServers saves a non-empty list atomically; an empty one is refused.
func WriteServers(path string, servers []string) error {
	if len(servers) == 0 {
		return errors.New("refusing to save an empty list of API servers")
	}
	return writeJSON(path, ServerList{Servers: servers}, 0o644)
}

// WriteState writes the balancer's snapshot atomically (read by `microkube status`).
func WriteState(path string, s Snapshot) error {
	return writeJSON(path, s, 0o644)
}

// writeJSON writes v to path atomically: a temporary file in the same folder, synced,
// then renamed over path, and the folder synced.
func writeJSON(path string, v any, mode os.FileMode) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
