// Package ports finds free TCP ports for servers a process starts on
// loopback (the embedded Temporal services, the DR drill's regions).
//
// Asking the kernel for port 0 and releasing it is racy in two ways: the
// port comes from the ephemeral range, so any outgoing connection of any
// process may take it as its source port before the server binds it; and
// several processes starting at once (the drill's regions) probe the same
// few ports. Block avoids both: it hands out ports below the ephemeral
// range (which outgoing connections never use), in a block of its own
// chosen from the process ID, checked free by binding every port of it.
// A server that then fails to bind should ask again.
package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// The range Block hands out: below Linux's default ephemeral range
// (32768-60999), above the well-known and most registered services.
const (
	low       = 20000
	high      = 32000
	blockSize = 16
	blocks    = (high - low) / blockSize
)

var (
	mu   sync.Mutex
	next = -1 // next block index to try in this process
)

// Block returns n (1 to 16) distinct free TCP ports on ip, all in one block
// this process has not handed out before.
func Block(ip string, n int) ([]int, error) {
	if n < 1 || n > blockSize {
		return nil, fmt.Errorf("ports: %d ports in a block of %d", n, blockSize)
	}
	mu.Lock()
	defer mu.Unlock()
	if next < 0 {
		next = (os.Getpid() * 7919) % blocks
	}
	for tried := 0; tried < blocks; tried++ {
		b := next
		next = (next + 1) % blocks
		if ports, ok := tryBlock(ip, low+b*blockSize, n); ok {
			return ports, nil
		}
	}
	return nil, errors.New("ports: no free block below the ephemeral range")
}

// tryBlock binds base..base+n-1 and releases them; ok if all were free.
func tryBlock(ip string, base, n int) ([]int, bool) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(p)))
		if err != nil {
			return nil, false
		}
		ls = append(ls, l)
		out = append(out, p)
	}
	return out, true
}
