//go:build !unix

package projbench

import "time"

func cpuTime() time.Duration { return 0 }
