package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawPost renders request i as a POST with an Idempotency-Key.
func rawPost(addr string) func(i int, dst []byte) []byte {
	return func(i int, dst []byte) []byte {
		body := fmt.Sprintf(`{"n":%d}`, i)
		return fmt.Appendf(dst, "POST /v1/things HTTP/1.1\r\nHost: %s\r\nIdempotency-Key: k-%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, i, len(body), body)
	}
}

// TestRaw sends through Raw to a real net/http server and checks what the
// server saw (every request once, bodies intact, connections reused) and
// what Run counted, for plain, chunked, error and connection-closing
// answers.
func TestRaw(t *testing.T) {
	for _, mode := range []string{"plain", "chunked", "status", "close"} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var buf [64]byte
				n, _ := r.Body.Read(buf[:])
				mu.Lock()
				seen[r.Header.Get("Idempotency-Key")+" "+string(buf[:n])]++
				mu.Unlock()
				switch mode {
				case "chunked":
					w.WriteHeader(http.StatusCreated)
					w.Write([]byte(strings.Repeat("x", 100)))
					w.(http.Flusher).Flush()
					w.Write([]byte(strings.Repeat("y", 5000)))
				case "status":
					w.WriteHeader(http.StatusConflict)
				case "close":
					w.Header().Set("Connection", "close")
					w.WriteHeader(http.StatusCreated)
				default:
					w.WriteHeader(http.StatusCreated)
					w.Write([]byte(`{"ok":true}`))
				}
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			res, err := Run(context.Background(), Config{Rate: 400, Duration: 500 * time.Millisecond, Raw: &Raw{Addr: addr, Build: rawPost(addr)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s; %d connections", res.Summary(), conns.Load())
			if len(seen) != 200 {
				t.Errorf("server saw %d distinct requests, want 200", len(seen))
			}
			for k, n := range seen {
				i := strings.Fields(k)[0][2:]
				if n != 1 || !strings.HasSuffix(k, fmt.Sprintf(`{"n":%s}`, i)) {
					t.Errorf("request %q seen %d times", k, n)
				}
			}
			switch mode {
			case "status":
				if res.Accepted != 0 || res.Failed != 200 || res.Status[http.StatusConflict] != 200 {
					t.Errorf("409s: accepted %d failed %d statuses %v", res.Accepted, res.Failed, res.Status)
				}
			case "close":
				if res.Accepted != 200 || conns.Load() != 200 {
					t.Errorf("Connection: close: accepted %d over %d connections, want 200 over 200", res.Accepted, conns.Load())
				}
			default:
				if res.Accepted != 200 || res.Failed != 0 {
					t.Errorf("accepted %d failed %d (%s)", res.Accepted, res.Failed, res.FirstErr)
				}
				if conns.Load() > 50 {
					t.Errorf("%d connections for 200 requests at 400/s: keep-alive not reused", conns.Load())
				}
			}
		})
	}
}

// TestRawRetriesClosedIdleConnection: a server that closes idle
// keep-alive connections between runs must not fail the next run's first
// requests (they go once more, on a new connection).
func TestRawRetriesClosedIdleConnection(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	pool := newRawPool(Raw{Addr: addr, Build: rawPost(addr)})
	defer pool.close()
	for i := range 5 {
		if st, err := pool.do(context.Background(), i); err != nil || st != http.StatusCreated {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	srv.CloseClientConnections() // the idle connection in the pool is now closed by the server
	time.Sleep(50 * time.Millisecond)
	if st, err := pool.do(context.Background(), 5); err != nil || st != http.StatusCreated {
		t.Fatalf("after the server closed the idle connection: %d %v", st, err)
	}
	if served.Load() != 6 {
		t.Fatalf("server answered %d requests, want 6", served.Load())
	}
}
