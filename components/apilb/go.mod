// microkube's node-local API load balancer: standard library only (components/components.yaml).
module microkube.local/apilb

go 1.26
