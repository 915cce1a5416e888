package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// Report is what Verify found: the event store's $all against the
// bridge's topics as a read_committed consumer sees them.
type Report struct {
	Bridge string
	// Head is the store's head position; Published the bridge's committed
	// checkpoint, both read at the start.
	Head, Published uint64
	// StoreEvents and Streams count the store's events and streams up to
	// Head; Records counts the event records read from the topics.
	StoreEvents, Streams, Records int

	// Missing: events at or below Published that no record carries.
	// Duplicated: records beyond the first for one event.
	// OutOfOrder: first records of events whose stream version is lower
	// than an earlier record's of the same stream (per-stream order).
	// Mismatched: records that do not decode, do not hash to their content,
	// or disagree with the store's event of the same ID.
	// Unknown: records whose event ID is not in the store up to Head.
	Missing, Duplicated, OutOfOrder, Mismatched, Unknown int
	// Ahead counts events above Published that are already visible (a
	// running bridge committed them after the checkpoint was read; in
	// at-least-once mode, records produced before their checkpoint).
	Ahead int
	// Truncated counts topic offsets deleted by retention before reading.
	Truncated int64

	// LagEvents is Head - Published. LagSeconds is how long the oldest
	// unpublished event has waited (now - its RecordedAt); OldestUnpublished
	// and NewestUnpublished are the RecordedAt of the first and last
	// unpublished events (zero when caught up).
	LagEvents                            uint64
	LagSeconds                           float64
	OldestUnpublished, NewestUnpublished time.Time

	// Streams with a problem, worst first (at most VerifyMaxStreams).
	Problems []StreamProblem
	Took     time.Duration
}

// StreamProblem is one stream's tally.
type StreamProblem struct {
	Stream                                               string
	Missing, Duplicated, OutOfOrder, Mismatched, Unknown int
	// The lowest missing version, the first duplicated and the first
	// out-of-order version met (0: none).
	FirstMissingVersion, FirstDuplicatedVersion, FirstOutOfOrderVersion uint64
}

// VerifyMaxStreams bounds Report.Problems.
const VerifyMaxStreams = 50

// OK reports whether every published event is in Kafka exactly once, in
// stream order, unaltered.
func (r *Report) OK() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.OutOfOrder == 0 && r.Mismatched == 0 && r.Unknown == 0
}

func (r *Report) String() string {
	var sb strings.Builder
	verdict := "OK: every published event exactly once, in order"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&sb, "kafka bridge %s: %s\n", r.Bridge, verdict)
	fmt.Fprintf(&sb, "  store head %d (%d events, %d streams), published %d, records %d\n", r.Head, r.StoreEvents, r.Streams, r.Published, r.Records)
	fmt.Fprintf(&sb, "  missing %d, duplicated %d, out of order %d, mismatched %d, unknown %d, ahead of checkpoint %d, truncated offsets %d\n",
		r.Missing, r.Duplicated, r.OutOfOrder, r.Mismatched, r.Unknown, r.Ahead, r.Truncated)
	fmt.Fprintf(&sb, "  lag %d events, %.3fs", r.LagEvents, r.LagSeconds)
	if r.LagEvents > 0 {
		fmt.Fprintf(&sb, " (unpublished %s .. %s)", r.OldestUnpublished.Format(time.RFC3339Nano), r.NewestUnpublished.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&sb, "\n  verified in %v\n", r.Took.Round(time.Millisecond))
	for _, p := range r.Problems {
		var parts []string
		add := func(n int, what string, first uint64) {
			switch {
			case n == 0:
			case first > 0:
				parts = append(parts, fmt.Sprintf("%s %d (first v%d)", what, n, first))
			default:
				parts = append(parts, fmt.Sprintf("%s %d", what, n))
			}
		}
		add(p.Missing, "missing", p.FirstMissingVersion)
		add(p.Duplicated, "duplicated", p.FirstDuplicatedVersion)
		add(p.OutOfOrder, "out of order", p.FirstOutOfOrderVersion)
		add(p.Mismatched, "mismatched", 0)
		add(p.Unknown, "unknown", 0)
		fmt.Fprintf(&sb, "  stream %s: %s\n", p.Stream, strings.Join(parts, ", "))
	}
	return sb.String()
}

// Markdown renders the report as a Markdown section.
func (r *Report) Markdown() string {
	var sb strings.Builder
	verdict := "OK"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&sb, "## Kafka bridge `%s`: %s\n\n", r.Bridge, verdict)
	sb.WriteString("| measure | value |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(&sb, "| %s | %v |\n", k, v) }
	row("store head position", r.Head)
	row("store events / streams", fmt.Sprintf("%d / %d", r.StoreEvents, r.Streams))
	row("published (checkpoint)", r.Published)
	row("records read (read_committed)", r.Records)
	row("missing", r.Missing)
	row("duplicated", r.Duplicated)
	row("out of order", r.OutOfOrder)
	row("mismatched", r.Mismatched)
	row("unknown", r.Unknown)
	row("ahead of checkpoint", r.Ahead)
	row("truncated offsets", r.Truncated)
	row("lag (events)", r.LagEvents)
	row("lag (seconds)", fmt.Sprintf("%.3f", r.LagSeconds))
	if r.LagEvents > 0 {
		row("oldest unpublished", r.OldestUnpublished.Format(time.RFC3339Nano))
		row("newest unpublished", r.NewestUnpublished.Format(time.RFC3339Nano))
	}
	row("took", r.Took.Round(time.Millisecond))
	if len(r.Problems) > 0 {
		sb.WriteString("\n| stream | missing | duplicated | out of order | mismatched | unknown | first bad version |\n|---|---|---|---|---|---|---|\n")
		for _, p := range r.Problems {
			first := p.FirstMissingVersion
			if first == 0 {
				first = max(p.FirstDuplicatedVersion, p.FirstOutOfOrderVersion)
			}
			fmt.Fprintf(&sb, "| `%s` | %d | %d | %d | %d | %d | %d |\n", p.Stream, p.Missing, p.Duplicated, p.OutOfOrder, p.Mismatched, p.Unknown, first)
		}
	}
	return sb.String()
}

// storedEvent is what Verify keeps of each store event.
type storedEvent struct {
	position, version uint64
	stream            string
	hash              event.Hash
	seen              int
}

type streamTally struct {
	StreamProblem
	maxVersion uint64
}

// Verify compares the store's $all with the bridge's topics (cfg: Source,
// Brokers, Name or Region, Topics, ClientOpts) as a read_committed consumer
// sees them. It reads the checkpoint first, then the store head, then the
// topics up to their end offsets, so it is consistent with a bridge running
// at the same time: every event at or below the checkpoint must be there.
// It holds one small entry per store event in memory. Errors are IO
// errors; what it finds is in the Report (see Report.OK).
func Verify(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if cfg.Source == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("verify: source and brokers are required")
	}
	start := time.Now()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer cl.Close()

	r := &Report{Bridge: cfg.Name}
	cp, _, err := readCheckpoint(ctx, cl, cfg.Topics.Checkpoint, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	r.Published = cp.Position
	if r.Head, err = cfg.Source.Head(ctx); err != nil {
		return nil, fmt.Errorf("verify: head: %w", err)
	}

	// The store, up to Head.
	events := make(map[string]*storedEvent, r.Head)
	tallies := map[string]*streamTally{}
	for next := uint64(1); next <= r.Head; {
		batch, err := cfg.Source.ReadAll(ctx, next, 10_000)
		if err != nil {
			return nil, fmt.Errorf("verify: read $all at %d: %w", next, err)
		}
		if len(batch) == 0 {
			return nil, fmt.Errorf("verify: $all ends at %d, head is %d", next-1, r.Head)
		}
		for i := range batch {
			e := &batch[i]
			if e.Position > r.Head {
				break
			}
			events[e.ID] = &storedEvent{position: e.Position, version: e.Version, stream: e.StreamID, hash: e.Hash}
			if tallies[e.StreamID] == nil {
				tallies[e.StreamID] = &streamTally{StreamProblem: StreamProblem{Stream: e.StreamID}}
			}
			if e.Position == r.Published+1 {
				r.OldestUnpublished = e.RecordedAt
			}
			if e.Position == r.Head && r.Head > r.Published {
				r.NewestUnpublished = e.RecordedAt
			}
			next = e.Position + 1
		}
		if next <= batch[len(batch)-1].Position {
			break
		}
	}
	r.StoreEvents, r.Streams = len(events), len(tallies)
	if r.Head > r.Published {
		r.LagEvents = r.Head - r.Published
		r.LagSeconds = max(0, cfg.Now().Sub(r.OldestUnpublished).Seconds())
	}

	// The topics: every topic in our frame (a category whose topic is
	// missing shows up as missing events).
	md, err := metadata(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	want := map[string]topicMeta{}
	for name, tm := range md {
		if strings.HasPrefix(name, cfg.Topics.Prefix) && strings.HasSuffix(name, cfg.Topics.Suffix) && name != cfg.Topics.Checkpoint {
			want[name] = tm
		}
	}
	starts, err := listOffsets(ctx, cl, want, offsetStart)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	ends, err := listOffsets(ctx, cl, want, offsetEnd)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var ranges []partRange
	for k, end := range ends {
		ranges = append(ranges, partRange{topic: k.topic, partition: k.partition, next: starts[k], end: end})
	}
	tally := func(stream string) *streamTally {
		t := tallies[stream]
		if t == nil {
			t = &streamTally{StreamProblem: StreamProblem{Stream: stream}}
			tallies[stream] = t
		}
		return t
	}
	truncated, err := readRanges(ctx, cl, ranges, true, func(rec *kgo.Record) error {
		r.Records++
		env, derr := DecodeRecord(rec)
		if derr != nil {
			r.Mismatched++
			tally(string(rec.Key)).Mismatched++
			return nil
		}
		st := tally(env.StreamID)
		se := events[env.ID]
		switch {
		case se == nil:
			r.Unknown++
			st.Unknown++
			return nil
		case se.stream != env.StreamID || se.version != env.Version || se.position != env.Position || se.hash != env.Hash:
			r.Mismatched++
			st.Mismatched++
			return nil
		}
		se.seen++
		if se.seen > 1 {
			r.Duplicated++
			st.Duplicated++
			if st.FirstDuplicatedVersion == 0 {
				st.FirstDuplicatedVersion = se.version
			}
			return nil
		}
		if se.position > r.Published {
			r.Ahead++
		}
		if se.version < st.maxVersion {
			r.OutOfOrder++
			st.OutOfOrder++
			if st.FirstOutOfOrderVersion == 0 {
				st.FirstOutOfOrderVersion = se.version
			}
		}
		st.maxVersion = max(st.maxVersion, se.version)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: read topics: %w", err)
	}
	for _, n := range truncated {
		r.Truncated += n
	}
	for _, se := range events {
		if se.seen == 0 && se.position <= r.Published {
			r.Missing++
			st := tallies[se.stream]
			st.Missing++
			if st.FirstMissingVersion == 0 || se.version < st.FirstMissingVersion {
				st.FirstMissingVersion = se.version
			}
		}
	}
	for _, t := range tallies {
		if p := t.StreamProblem; p.Missing+p.Duplicated+p.OutOfOrder+p.Mismatched+p.Unknown > 0 {
			r.Problems = append(r.Problems, p)
		}
	}
	sort.Slice(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		sa := a.Missing + a.Duplicated + a.OutOfOrder + a.Mismatched + a.Unknown
		sb := b.Missing + b.Duplicated + b.OutOfOrder + b.Mismatched + b.Unknown
		if sa != sb {
			return sa > sb
		}
		return a.Stream < b.Stream
	})
	if len(r.Problems) > VerifyMaxStreams {
		r.Problems = r.Problems[:VerifyMaxStreams]
	}
	r.Took = time.Since(start)
	return r, nil
}
