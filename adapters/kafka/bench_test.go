package kafka

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/livecore/livecore/internal/testenv"
)

// BenchmarkBridge publishes a pre-filled store of 1 KiB events exactly-once
// and at-least-once, side by side, and measures end-to-end lag, on the
// in-process broker and on the real Kafka. Run it once per target:
//
//	go test ./adapters/kafka -run '^$' -bench Bridge -benchtime 1x
//
// LIVECORE_BRIDGE_BENCH_EVENTS overrides the 200,000 events.
func BenchmarkBridge(b *testing.B) {
	for _, name := range []string{"kfake", "kafka"} {
		b.Run(name, func(b *testing.B) {
			cfg := BenchConfig{}
			if name == "kafka" {
				cfg.Brokers = testenv.KafkaBrokers(b)
			}
			if n := os.Getenv("LIVECORE_BRIDGE_BENCH_EVENTS"); n != "" {
				if _, err := fmt.Sscan(n, &cfg.Events); err != nil {
					b.Fatal(err)
				}
			}
			var res BenchResult
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
				var err error
				res, err = RunBench(ctx, cfg, benchWriter{b})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.ExactlyOnceMedian, "eos_events/s")
			b.ReportMetric(res.AtLeastOnceMedian, "alo_events/s")
			b.ReportMetric(res.OverheadPercent, "eos_overhead_%")
			b.ReportMetric(float64(res.LagP50.Microseconds())/1000, "lag_p50_ms")
			b.ReportMetric(float64(res.LagP99.Microseconds())/1000, "lag_p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type benchWriter struct{ b *testing.B }

func (w benchWriter) Write(p []byte) (int, error) {
	w.b.Logf("%s", p)
	return len(p), nil
}
