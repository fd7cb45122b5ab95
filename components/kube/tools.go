//go:build tools

// Keeps upstream's kubectl main in this module's build list, so `go mod tidy`
// records what `go build k8s.io/kubernetes/cmd/kubectl` needs (components.yaml
// builds it as the kubectl binary).
package main

import _ "k8s.io/kubernetes/cmd/kubectl"
