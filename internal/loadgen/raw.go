package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Raw is a lean way to send: each request is rendered by Build as the
// bytes of an HTTP/1.1 request (request line, headers, body) and written
// to a keep-alive connection from a pool of at most MaxConns; the answer
// is read with net/http's own parser (http.ReadResponse). It skips what
// http.Client does per request (a Request and header maps built and
// cloned, two goroutines per connection): with the generator in the same
// process as the server, on 2 cores, that client took about a fifth of
// the CPU of a run, which the server under test then did not have.
type Raw struct {
	// Addr is the server's host:port.
	Addr string
	// Build appends the i-th request to dst and returns it. The request
	// must ask for a keep-alive connection (HTTP/1.1, no "Connection:
	// close") and may be sent twice: once more on a fresh connection if a
	// reused one turns out closed before any answer (use an
	// Idempotency-Key, as every livecore POST needs anyway).
	Build func(i int, dst []byte) []byte
	// Timeout bounds each exchange (default 30s).
	Timeout time.Duration
}

type rawConn struct {
	net.Conn
	r   *bufio.Reader
	buf []byte
}

// rawPool is Raw's connections: idle ones, and a bound on how many exist.
type rawPool struct {
	raw   Raw
	idle  chan *rawConn
	slots chan struct{}
}

func newRawPool(raw Raw) *rawPool {
	if raw.Timeout <= 0 {
		raw.Timeout = 30 * time.Second
	}
	return &rawPool{raw: raw, idle: make(chan *rawConn, MaxConns), slots: make(chan struct{}, MaxConns)}
}

// get returns an idle connection, a new one if the pool may grow, or
// waits for one to be put back.
func (p *rawPool) get(ctx context.Context) (*rawConn, bool, error) {
	select {
	case c := <-p.idle:
		return c, true, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, true, nil
	case p.slots <- struct{}{}:
		c, err := p.dial(ctx)
		return c, false, err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (p *rawPool) dial(ctx context.Context) (*rawConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", p.raw.Addr)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &rawConn{Conn: nc, r: bufio.NewReaderSize(nc, 8<<10)}, nil
}

// drop closes c and frees its slot.
func (p *rawPool) drop(c *rawConn) {
	c.Close()
	<-p.slots
}

// close closes the idle connections.
func (p *rawPool) close() {
	for {
		select {
		case c := <-p.idle:
			p.drop(c)
		default:
			return
		}
	}
}

// do sends request i and returns the answer's status code.
func (p *rawPool) do(ctx context.Context, i int) (int, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return 0, err
		}
		status, answered, err := p.exchange(c, i)
		if err == nil {
			return status, nil
		}
		p.drop(c)
		// A keep-alive connection the server closed while it sat idle
		// fails before any answer: send once more on a new one.
		if reused && !answered && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return 0, err
	}
}

// exchange writes request i on c and reads the answer. On success c goes
// back to the pool (or is closed if the server asked to).
func (p *rawPool) exchange(c *rawConn, i int) (status int, answered bool, err error) {
	c.buf = p.raw.Build(i, c.buf[:0])
	if err := c.SetDeadline(time.Now().Add(p.raw.Timeout)); err != nil {
		return 0, false, err
	}
	if _, err := c.Write(c.buf); err != nil {
		return 0, false, err
	}
	if _, err := c.r.Peek(1); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, true, fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, true, fmt.Errorf("read answer body: %w", err)
	}
	if resp.Close {
		p.drop(c)
	} else {
		p.idle <- c
	}
	return resp.StatusCode, true, nil
}
