package main

import "testing"

// A stack as runtime.Stack prints it when kube-router's controller calls klog.Fatal.
const netpolFatalStack = `goroutine 812 [running]:
main.run.func1(0xff)
	/work/kubelite.go:118 +0x45
k8s.io/klog/v2.(*loggingT).output(0x8d3c2a0, 0x3, 0x0, 0xc000f2e000, 0x1, {0x0?, 0x0?}, 0x0, 0x0)
	k8s.io/klog/v2@v2.140.0/klog.go:1003 +0x6e5
k8s.io/klog/v2.Fatalf(...)
	k8s.io/klog/v2@v2.140.0/klog.go:1711
github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol.(*NetworkPolicyController).fullPolicySync(0xc0004d2000)
	github.com/cloudnativelabs/kube-router/v2@v2.1.0/pkg/controllers/netpol/network_policy_controller.go:312 +0x8a5
k8s.io/kubernetes/pkg/kubelet.(*Kubelet).Run(0xc0001)
	k8s.io/kubernetes/pkg/kubelet/kubelet.go:1 +0x1
`

func TestPartOfStackNamesTheInnermostPart(t *testing.T) {
	if got := partOfStack(netpolFatalStack); got != "netpol" {
		t.Fatalf("partOfStack = %q, want netpol", got)
	}
	apiserver := "goroutine 7 [running]:\nk8s.io/apiserver/pkg/storage/etcd3.New(0x1)\n\tx.go:1\n"
	if got := partOfStack(apiserver); got != "kube-apiserver" {
		t.Fatalf("partOfStack = %q, want kube-apiserver", got)
	}
	if got := partOfStack("goroutine 1 [running]:\nmain.main()\n\tmain.go:1\n"); got != "a part" {
		t.Fatalf("partOfStack = %q, want 'a part'", got)
	}
}
