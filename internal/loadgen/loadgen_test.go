package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoCoordinatedOmission: a server that stalls once for 300 ms must show
// the stall in the latencies of every request that was due during it, not
// only in the one it held (a closed-loop client would send nothing while
// waiting and report one slow request).
func TestNoCoordinatedOmission(t *testing.T) {
	for _, sender := range []string{"client", "raw"} {
		t.Run(sender, func(t *testing.T) { noCoordinatedOmission(t, sender) })
	}
}

func noCoordinatedOmission(t *testing.T, sender string) {
	var n atomic.Int64
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 10 {
			time.Sleep(300 * time.Millisecond)
			close(stall)
		} else if n.Load() > 10 {
			<-stall // everyone behind the stalled one waits (one queue)
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	cfg := Config{Rate: 200, Duration: time.Second}
	if sender == "raw" {
		addr := strings.TrimPrefix(srv.URL, "http://")
		cfg.Raw = &Raw{Addr: addr, Build: rawPost(addr)}
	} else {
		cfg.Request = func(ctx context.Context, _ int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
		}
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 60 arrivals fall into the 300 ms stall (200/s); a closed-loop
	// client would report one slow request, this one dozens.
	slow := 0
	for _, l := range res.Latencies {
		if l > 100*time.Millisecond {
			slow++
		}
	}
	t.Logf("%s; %d requests over 100 ms", res.Summary(), slow)
	if res.Accepted != 200 || res.Offered != 200 || slow < 25 || res.Quantile(0.9) < 50*time.Millisecond {
		t.Fatalf("the stall is not in the latencies: accepted %d, %d slow, p90 %v", res.Accepted, slow, res.Quantile(0.9))
	}
}

func TestFindMax(t *testing.T) {
	// A server that handles at most ~400 requests/s (one at a time, 2.5 ms
	// each): the search must settle between 200 and 400.
	var busy = make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busy <- struct{}{}
		time.Sleep(2500 * time.Microsecond)
		<-busy
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg := Config{Request: func(ctx context.Context, _ int) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	}}
	best, trials, err := FindMax(context.Background(), cfg, SearchConfig{Start: 100, Trial: 500 * time.Millisecond, Pause: 50 * time.Millisecond, Steps: 2, MaxP99: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trials {
		t.Logf("%s sustained=%v", tr.Summary(), tr.Sustained)
	}
	if best < 100 || best > 400 {
		t.Fatalf("max %v, want 100..400", best)
	}
}
