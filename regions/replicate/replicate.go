// Package replicate appends other regions' events to this region's store:
// it consumes every peer's Kafka topics read_committed and appends each
// event as a replica with its origin's ID, version, metadata, RecordedAt
// and stream hashes (event.ReplicaAppender), exactly once.
//
// # Exactly once
//
// Kafka offsets are not the source of truth: the replica store is. An event
// is appended only if it links to the local head of its stream (version =
// head + 1, PrevHash = head's hash) and its ID is new; an event already
// stored (same ID, version and hash) is skipped. So re-delivery after a
// crash or a rewind is harmless, a gap is never filled out of order, and a
// diverged history is refused, never merged. The consumed offsets (kept in
// a small file, written after the appends they cover are durable) only
// save re-reading.
//
// # What is consumed
//
// Each region's bridge publishes its whole $all (its own events and the
// replicas it holds) to its own topics, "<prefix><region>.livecore.<category>.v1".
// A record is applied only from its origin's topics (ce_source equals the
// event's Metadata.Region), so each event is applied once per region, from
// the region that wrote it. Before appending, the writer's ownership is
// checked (regions.Validator): an event written outside its writer's epochs
// of the stream's home (by an old owner beyond its cut) is rejected and
// counted, never appended.
//
// # Ordering across regions
//
// A stream's events come from one topic partition while one region owns
// it, but after a failover its next events come from another region's
// topics, which may be read first. An event that is ahead of the local
// stream head (event.ErrReplicaGap) is held in memory until its
// predecessor is appended; the committed offset of its partition stays
// below it, so a restart reads it again.
package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livecore/livecore/adapters/kafka"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/regions"
)

// Checker decides whether an event's writer owned its stream's home when
// it wrote it (*regions.Validator).
type Checker interface {
	Check(ctx context.Context, origin string, pos uint64, stream string, seen time.Time) (regions.Verdict, error)
}

// Config configures a Replicator.
type Config struct {
	// Store receives the replicas. Required.
	Store event.ReplicaAppender
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Region is this region; Peers the regions to replicate from.
	Region string
	Peers  []string
	// TopicPrefix returns the prefix of a region's event topics (the
	// bridge's Topics.Prefix). Default: region + ".livecore.".
	TopicPrefix func(region string) string
	// TopicSuffix is the event topics' suffix. Default ".v1".
	TopicSuffix string
	// Checker validates writers' ownership. Required.
	Checker Checker
	// OffsetsFile keeps consumed offsets across restarts ("": start from
	// the beginning of every topic on each start; correct, only slower).
	OffsetsFile string
	// MaxBatch bounds the events of one AppendReplicated. Default 2000.
	MaxBatch int
	// Discover is how often new topics and partitions are looked for.
	// Default 500 ms.
	Discover time.Duration
	// Registerer receives the metrics (nil: none).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	ClientOpts []kgo.Opt
	Now        func() time.Time
}

func (c *Config) setDefaults() {
	if c.TopicPrefix == nil {
		c.TopicPrefix = func(r string) string { return r + ".livecore." }
	}
	if c.TopicSuffix == "" {
		c.TopicSuffix = ".v1"
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2000
	}
	if c.Discover == 0 {
		c.Discover = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports missing parts.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil || c.Checker == nil {
		errs = append(errs, errors.New("a store and a checker are required"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Region == "" {
		errs = append(errs, errors.New("no region"))
	}
	if slices.Contains(c.Peers, c.Region) {
		errs = append(errs, fmt.Errorf("region %s lists itself as a peer", c.Region))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replicator config: %w", err)
	}
	return nil
}

// Replicator consumes peers' topics into the local store. Run must be
// called once; Status and CaughtUp are safe for concurrent use.
type Replicator struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	cl  *kgo.Client
	re  []*regexp.Regexp // per peer, same order as cfg.Peers

	mu       sync.Mutex
	parts    map[tp]*partState
	held     map[string][]heldEvent // stream -> events ahead of its head, by version
	peers    map[string]*PeerStatus
	progress chan struct{} // closed and replaced after each applied batch or offset move
	dirty    bool          // offsets changed since the last save
}

type tp struct {
	topic     string
	partition int32
}

type partState struct {
	peer string
	next int64 // offset after the last record processed
	lso  int64 // last stable offset seen (read_committed end)
}

type heldEvent struct {
	env    event.Envelope
	peer   string
	tp     tp
	offset int64
}

// PeerStatus is replication from one peer, as of now.
type PeerStatus struct {
	Peer string `json:"peer"`
	// LagEvents is the number of committed records of the peer's topics
	// not yet processed (sum over partitions of LSO - next offset), plus
	// the peer's events held for a missing predecessor.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is how old the newest event applied from the peer was
	// when it was applied if records are still pending, else 0.
	LagSeconds float64 `json:"lag_seconds"`
	// Applied counts the peer's events now in the local store (appended,
	// or found already stored on a re-delivery).
	Applied    uint64 `json:"applied"`
	Relayed    uint64 `json:"relayed"`  // other regions' events republished by the peer: applied from their origin instead
	Rejected   uint64 `json:"rejected"` // stale-epoch writes and conflicts
	Held       int    `json:"held"`     // waiting for a predecessor
	Partitions int    `json:"partitions"`
	// LastApplied is the RecordedAt of the newest event applied.
	LastApplied time.Time `json:"last_applied"`
	// Rejections lists the latest rejected events (at most 100).
	Rejections []Rejection `json:"rejections,omitempty"`
}

// Rejection is one refused event.
type Rejection struct {
	ID       string `json:"id"`
	Stream   string `json:"stream"`
	Version  uint64 `json:"version"`
	Origin   string `json:"origin"`
	Position uint64 `json:"origin_position"`
	Reason   string `json:"reason"`
}

// New validates cfg and returns a Replicator.
func New(cfg Config) (*Replicator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Region)
	if err != nil {
		return nil, err
	}
	r := &Replicator{
		cfg: cfg, m: m, log: cfg.Logger.With("component", "replicator", "region", cfg.Region),
		parts: map[tp]*partState{}, held: map[string][]heldEvent{}, peers: map[string]*PeerStatus{},
		progress: make(chan struct{}),
	}
	for _, p := range cfg.Peers {
		r.re = append(r.re, regexp.MustCompile("^"+regexp.QuoteMeta(cfg.TopicPrefix(p))+`[^.]+`+regexp.QuoteMeta(cfg.TopicSuffix)+"$"))
		r.peers[p] = &PeerStatus{Peer: p}
	}
	return r, nil
}

func (r *Replicator) peerOf(topic string) (string, bool) {
	for i, re := range r.re {
		if re.MatchString(topic) {
			return r.cfg.Peers[i], true
		}
	}
	return "", false
}

// Run replicates until ctx ends (returning ctx's error) or the store fails
// for good (event.ErrClosed, event.ErrReadOnly, event.ErrCorrupt).
func (r *Replicator) Run(ctx context.Context) error {
	offsets := r.loadOffsets()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("livecore-replicator-" + r.cfg.Region),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets too: seeing them lets the
		// consumed offset reach the end offset (CaughtUp).
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
	}, r.cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	defer cl.Close()
	r.mu.Lock()
	r.cl = cl
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.discoverLoop(ctx, offsets)
	go r.saveLoop(ctx)
	defer r.saveOffsets()

	for {
		fetches := cl.PollRecords(ctx, r.cfg.MaxBatch)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("fetch", "topic", t, "partition", p, "err", err)
			}
		})
		r.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if ps := r.parts[tp{fp.Topic, fp.Partition}]; ps != nil && fp.LastStableOffset >= 0 {
				ps.lso = max(ps.lso, fp.LastStableOffset)
			}
		})
		r.mu.Unlock()
		var recs []*kgo.Record
		fetches.EachRecord(func(rec *kgo.Record) { recs = append(recs, rec) })
		if err := r.process(ctx, recs); err != nil {
			return err
		}
		r.updateMetrics()
	}
}

// fatal reports a store error that retrying cannot fix.
func fatal(err error) bool {
	return errors.Is(err, event.ErrClosed) || errors.Is(err, event.ErrReadOnly) || errors.Is(err, event.ErrCorrupt)
}

// process decodes, filters, validates and appends one poll's records.
func (r *Replicator) process(ctx context.Context, recs []*kgo.Record) error {
	seen := time.Now()
	var batch []heldEvent
	for _, rec := range recs {
		if rec.Attrs.IsControl() {
			continue
		}
		key := tp{rec.Topic, rec.Partition}
		peer, _ := r.peerOf(rec.Topic)
		env, err := kafka.DecodeRecord(rec)
		if err != nil {
			r.reject(peer, Rejection{Stream: string(rec.Key), Reason: err.Error()}, "bad_record")
			continue
		}
		origin := env.Metadata.Region
		publisher := header(rec, kafka.HeaderSource)
		if origin == "" {
			origin = publisher
		}
		if origin != publisher {
			r.count(peer, func(s *PeerStatus) { s.Relayed++ })
			continue
		}
		for {
			vd, err := r.cfg.Checker.Check(ctx, origin, env.Position, env.StreamID, seen)
			if err == nil {
				if !vd.OK {
					r.reject(peer, Rejection{ID: env.ID, Stream: env.StreamID, Version: env.Version, Origin: origin, Position: env.Position, Reason: vd.Reason}, "stale_epoch")
					break
				}
				env.Position, env.PrevGlobalHash, env.GlobalHash = 0, event.Hash{}, event.Hash{}
				batch = append(batch, heldEvent{env: env, peer: peer, tp: key, offset: rec.Offset})
				break
			}
			r.log.Warn("ownership check failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if err := r.apply(ctx, batch); err != nil {
		return err
	}
	// Every record of the poll is now appended, skipped, rejected or held
	// (held ones keep their partition's saved offset below them).
	r.mu.Lock()
	for _, rec := range recs {
		r.advanceLocked(tp{rec.Topic, rec.Partition}, rec.Offset)
	}
	r.notifyLocked()
	r.mu.Unlock()
	return nil
}

func header(rec *kgo.Record, k string) string {
	for _, h := range rec.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// apply appends batch in order; events ahead of their stream are held,
// conflicts rejected; what got appended releases held successors.
func (r *Replicator) apply(ctx context.Context, batch []heldEvent) error {
	for len(batch) > 0 {
		// Events of a stream beyond its lowest held event wait behind it;
		// an earlier one (the missing predecessor, or one before it) goes.
		r.mu.Lock()
		ready := batch[:0:0]
		for _, h := range batch {
			if q := r.held[h.env.StreamID]; len(q) > 0 && h.env.Version > q[0].env.Version {
				r.holdLocked(h)
				continue
			}
			ready = append(ready, h)
		}
		r.mu.Unlock()
		envs := make([]event.Envelope, len(ready))
		for i := range ready {
			envs[i] = ready[i].env
		}
		var res event.ReplicaResult
		var err error
		for len(envs) > 0 {
			res, err = r.cfg.Store.AppendReplicated(ctx, envs)
			if err == nil || ctx.Err() != nil {
				break
			}
			var re *event.ReplicaError
			if errors.As(err, &re) {
				break
			}
			if fatal(err) {
				return fmt.Errorf("replicator: %w", err)
			}
			r.log.Warn("append replicas; retrying", "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *event.ReplicaError
		if errors.As(err, &re) {
			// Everything before the refused event goes again (the batch was
			// atomic); the refused one is held or rejected, and so is
			// everything after it of the same stream.
			bad := ready[re.Index]
			var rest []heldEvent
			rest = append(rest, ready[:re.Index]...)
			r.mu.Lock()
			if errors.Is(err, event.ErrReplicaGap) {
				r.holdLocked(bad)
			} else {
				r.mu.Unlock()
				r.reject(bad.peer, Rejection{ID: bad.env.ID, Stream: bad.env.StreamID, Version: bad.env.Version, Origin: bad.env.Metadata.Region, Reason: err.Error()}, "conflict")
				r.mu.Lock()
			}
			for _, h := range ready[re.Index+1:] {
				if h.env.StreamID == bad.env.StreamID && h.env.Version > bad.env.Version {
					r.holdLocked(h)
				} else {
					rest = append(rest, h)
				}
			}
			r.mu.Unlock()
			batch = rest
			continue
		}
		r.applied(ready, res)
		batch = r.releaseHeld(ready)
	}
	return nil
}

// applied records a successful batch: counters and offsets.
func (r *Replicator) applied(done []heldEvent, res event.ReplicaResult) {
	if len(done) == 0 {
		return
	}
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range done {
		s := r.peers[h.peer]
		if s != nil {
			s.Applied++
			if h.env.RecordedAt.After(s.LastApplied) {
				s.LastApplied = h.env.RecordedAt
			}
			s.LagSeconds = max(0, now.Sub(h.env.RecordedAt).Seconds())
		}
	}
	r.m.applied.Add(float64(res.Appended))
	r.m.skipped.Add(float64(res.Skipped))
	r.notifyLocked()
}

// releaseHeld returns the held events that now follow their stream's head.
func (r *Replicator) releaseHeld(done []heldEvent) []heldEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []heldEvent
	seen := map[string]bool{}
	for _, h := range done {
		s := h.env.StreamID
		if seen[s] {
			continue
		}
		seen[s] = true
		if q := r.held[s]; len(q) > 0 {
			out = append(out, q...)
			delete(r.held, s)
		}
	}
	return out
}

func (r *Replicator) holdLocked(h heldEvent) {
	q := r.held[h.env.StreamID]
	for _, x := range q {
		if x.env.ID == h.env.ID {
			return
		}
	}
	q = append(q, h)
	sort.Slice(q, func(i, j int) bool { return q[i].env.Version < q[j].env.Version })
	r.held[h.env.StreamID] = q
}

func (r *Replicator) advanceLocked(key tp, offset int64) {
	if ps := r.parts[key]; ps != nil && offset+1 > ps.next {
		ps.next = offset + 1
		r.dirty = true
	}
}

func (r *Replicator) notifyLocked() {
	close(r.progress)
	r.progress = make(chan struct{})
}

func (r *Replicator) count(peer string, fn func(*PeerStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.peers[peer]; s != nil {
		fn(s)
	}
}

func (r *Replicator) reject(peer string, rej Rejection, reason string) {
	r.log.Warn("replica rejected", "peer", peer, "event", rej.ID, "stream", rej.Stream, "version", rej.Version,
		"origin", rej.Origin, "origin_position", rej.Position, "kind", reason, "reason", rej.Reason)
	r.m.rejected.WithLabelValues(peer, reason).Inc()
	r.count(peer, func(s *PeerStatus) {
		s.Rejected++
		s.Rejections = append(s.Rejections, rej)
		if len(s.Rejections) > 100 {
			s.Rejections = s.Rejections[len(s.Rejections)-100:]
		}
	})
}

// safeOffsetsLocked returns, per partition, the offset to resume from:
// below every held event of that partition.
func (r *Replicator) safeOffsetsLocked() map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for k, ps := range r.parts {
		if out[k.topic] == nil {
			out[k.topic] = map[int32]int64{}
		}
		out[k.topic][k.partition] = ps.next
	}
	for _, q := range r.held {
		for _, h := range q {
			if cur, ok := out[h.tp.topic][h.tp.partition]; ok && h.offset < cur {
				out[h.tp.topic][h.tp.partition] = h.offset
			}
		}
	}
	return out
}

// Status returns replication from every peer, by peer.
func (r *Replicator) Status() []PeerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	lag := map[string]int64{}
	parts := map[string]int{}
	for _, ps := range r.parts {
		parts[ps.peer]++
		if ps.lso > ps.next {
			lag[ps.peer] += ps.lso - ps.next
		}
	}
	held := map[string]int{}
	for _, q := range r.held {
		for _, h := range q {
			held[h.peer]++
		}
	}
	out := make([]PeerStatus, 0, len(r.peers))
	for _, p := range r.cfg.Peers {
		s := *r.peers[p]
		s.Rejections = append([]Rejection(nil), s.Rejections...)
		s.Held, s.Partitions = held[p], parts[p]
		s.LagEvents = lag[p] + int64(held[p])
		if s.LagEvents == 0 {
			s.LagSeconds = 0
		}
		out = append(out, s)
	}
	return out
}

func (r *Replicator) updateMetrics() {
	for _, s := range r.Status() {
		r.m.lagEvents.WithLabelValues(s.Peer).Set(float64(s.LagEvents))
		r.m.lagSeconds.WithLabelValues(s.Peer).Set(s.LagSeconds)
		r.m.held.WithLabelValues(s.Peer).Set(float64(s.Held))
	}
}

// discoverLoop finds the peers' topics and partitions and starts consuming
// new ones from their saved offset (or the start).
func (r *Replicator) discoverLoop(ctx context.Context, saved map[string]map[int32]int64) {
	t := time.NewTicker(r.cfg.Discover)
	defer t.Stop()
	for {
		if err := r.discover(ctx, saved); err != nil && ctx.Err() == nil {
			r.log.Warn("discover topics", "err", err)
		}
		r.updateMetrics()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// discover adds new partitions and refreshes every partition's LSO.
func (r *Replicator) discover(ctx context.Context, saved map[string]map[int32]int64) error {
	ends, err := r.endOffsets(ctx)
	if err != nil {
		return err
	}
	add := map[string]map[int32]kgo.Offset{}
	r.mu.Lock()
	for k, end := range ends {
		ps := r.parts[k]
		if ps == nil {
			peer, _ := r.peerOf(k.topic)
			ps = &partState{peer: peer}
			start := saved[k.topic][k.partition]
			ps.next = start
			r.parts[k] = ps
			if add[k.topic] == nil {
				add[k.topic] = map[int32]kgo.Offset{}
			}
			add[k.topic][k.partition] = kgo.NewOffset().At(start)
		}
		ps.lso = max(ps.lso, end)
	}
	cl := r.cl
	r.mu.Unlock()
	if len(add) > 0 && cl != nil {
		cl.AddConsumePartitions(add)
	}
	return nil
}

// endOffsets lists the read_committed end offsets (last stable offsets) of
// every partition of the peers' topics.
func (r *Replicator) endOffsets(ctx context.Context) (map[tp]int64, error) {
	r.mu.Lock()
	cl := r.cl
	r.mu.Unlock()
	if cl == nil {
		return nil, errors.New("replicator not running")
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.IsolationLevel = 1 // read_committed: the LSO
	for _, t := range mresp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		if _, ok := r.peerOf(*t.Topic); !ok {
			continue
		}
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = *t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		lreq.Topics = append(lreq.Topics, rt)
	}
	out := map[tp]int64{}
	if len(lreq.Topics) == 0 {
		return out, nil
	}
	shards := cl.RequestSharded(ctx, lreq)
	for _, sh := range shards {
		if sh.Err != nil {
			return nil, fmt.Errorf("list offsets: %w", sh.Err)
		}
		resp := sh.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("list offsets %s/%d: %w", t.Topic, p.Partition, err)
				}
				out[tp{t.Topic, p.Partition}] = p.Offset
			}
		}
	}
	return out, nil
}

// CaughtUp waits until every record committed to peer's topics as of the
// call is processed (applied, skipped or rejected) and none of the peer's
// events is held: this region then holds everything the peer published.
// It returns ctx's error if that does not happen in time.
func (r *Replicator) CaughtUp(ctx context.Context, peer string) error {
	if _, ok := r.peers[peer]; !ok {
		return fmt.Errorf("replicator: %s is not a peer of %s", peer, r.cfg.Region)
	}
	var ends map[tp]int64
	for {
		var err error
		if ends, err = r.endOffsets(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("catch up with %s: %w (last: %v)", peer, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := r.discover(ctx, nil); err != nil {
		return err
	}
	for {
		r.mu.Lock()
		done, waiting := true, ""
		for k, end := range ends {
			ps := r.parts[k]
			if ps == nil || ps.peer != peer {
				continue
			}
			if ps.next < end {
				done, waiting = false, fmt.Sprintf("%s/%d at %d of %d", k.topic, k.partition, ps.next, end)
				break
			}
		}
		if done {
			for _, q := range r.held {
				for _, h := range q {
					if h.peer == peer {
						done, waiting = false, fmt.Sprintf("%s v%d held for its predecessor", h.env.StreamID, h.env.Version)
					}
				}
			}
		}
		progress := r.progress
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("catch up with %s: %w (waiting for %s)", peer, ctx.Err(), waiting)
		case <-progress:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Offsets file.

func (r *Replicator) loadOffsets() map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	if r.cfg.OffsetsFile == "" {
		return out
	}
	b, err := os.ReadFile(r.cfg.OffsetsFile)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("read offsets; starting from the beginning", "err", err)
		}
		return out
	}
	if err := json.Unmarshal(b, &out); err != nil {
		r.log.Warn("decode offsets; starting from the beginning", "err", err)
		return map[string]map[int32]int64{}
	}
	return out
}

func (r *Replicator) saveLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.saveOffsets()
		}
	}
}

// saveOffsets writes the safe offsets (tmp file + rename). Offsets only
// ever cover appends that returned, i.e. are durable.
func (r *Replicator) saveOffsets() {
	if r.cfg.OffsetsFile == "" {
		return
	}
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return
	}
	offs := r.safeOffsetsLocked()
	r.dirty = false
	r.mu.Unlock()
	b, _ := json.Marshal(offs)
	tmp := r.cfg.OffsetsFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err == nil {
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, r.cfg.OffsetsFile)
		}
		if err != nil {
			r.log.Warn("save offsets", "err", err)
		}
	}
}

// Topics returns the regexp source of the topics consumed from peer.
func (r *Replicator) Topics(peer string) string {
	for i, p := range r.cfg.Peers {
		if p == peer {
			return r.re[i].String()
		}
	}
	return ""
}
