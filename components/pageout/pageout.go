// Shared by the wrappers whose components.yaml entry lists `shared: [pageout]` (kube,
// etcd, containerd, kine): the build copies this file into the wrapper's package main,
// so there is one source and no copies in the repository. Standard library only, so it
// builds in every wrapper whatever that wrapper's module requires.

package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// How long after start (kubelite: after all its parts started) a daemon gives back
	// its start-up code pages. etcd, containerd and kine finish their start-up in the
	// first seconds; kubelite's parts have settled by then too.
	startupPagesSettle = 30 * time.Second
	madvPageout        = 21 // MADV_PAGEOUT, Linux 5.4
)

// releaseStartupPagesAfter calls releaseStartupPages once, settle after now, in its own
// goroutine, and hands report the size of the mappings it released, in bytes. It does
// not block; a process that exits before then releases nothing.
func releaseStartupPagesAfter(settle time.Duration, report func(mappedBytes uint64)) {
	time.AfterFunc(settle, func() { report(releaseStartupPages()) })
}

// releaseStartupPages gives the kernel back the clean pages of the binary's own code and
// read-only data that start-up left mapped, and returns the size of the mappings it
// advised, in bytes (0 if /proc cannot be read). Go runs the init of every linked package
// when the process starts, and each daemon runs its start-up code once (flags, schemes,
// plugin registration); with the kernel's fault-around that maps most of the binary's
// text and read-only data. Once the daemon has settled, MADV_PAGEOUT (Linux 5.4, see
// madvise(2)) unmaps them; the pages the daemon still runs fault back in from the page
// cache, so the process keeps only its working set. Nothing is lost: these pages are the
// binary file. Writable mappings (.data, .bss, the heap) are never touched.
func releaseStartupPages() uint64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	released := uint64(0)
	for _, line := range strings.Split(string(maps), "\n") {
		// start-end perms offset dev inode path
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != exe || strings.Contains(f[1], "w") {
			continue
		}
		bounds := strings.SplitN(f[0], "-", 2)
		start, err1 := strconv.ParseUint(bounds[0], 16, 64)
		end, err2 := strconv.ParseUint(bounds[1], 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout); errno == 0 {
			released += end - start
		}
	}
	return released
}
