// Package app is the application service between the edges (HTTP, workflow
// activities) and the pure domain: it loads an aggregate by folding its
// stream, lets the domain decide, and appends the decided events with the
// exact expected version, retrying on conflicts.
//
// # Contract
//
//   - Execute runs one command against one stream. Commands carry an ID that
//     is unique per command and reused by its retries; the events of the
//     command get IDs event.DeriveID(cmd.ID, i). Before deciding, the service
//     looks for DeriveID(cmd.ID, 0) in the stream: if the command was
//     appended before, nothing is appended and the original events and
//     versions are returned (Result.Replayed). A command that appended
//     nothing (a business error or a no-op) is decided afresh on retry.
//   - Business errors (what decide returns) are returned as they are and never
//     retried. A conflict (event.ErrWrongExpectedVersion, another writer got
//     there first) reloads the stream and decides again, up to
//     Config.MaxRetries times; then the *event.ConcurrencyError is returned.
//   - Folded aggregates are cached per stream (LRU, Config.CacheSize
//     streams). Each round first catches the cached aggregate up from its
//     version, so writes by other processes are seen; nothing refolds from
//     zero unless the entry was evicted or a round failed. Hazard: an entry
//     keeps, besides its aggregate, the IDs of all its stream's events (about
//     100 bytes each) to recognise replays; size the cache for that.
//
// # Concurrency
//
// The service is safe for concurrent use. Commands for one stream queue up
// and one goroutine per busy stream handles them: the caller of the
// Execute that found the stream idle, until its own command is acked, then
// one started for the commands still queued (gone when the queue is
// empty). It takes up to Config.MaxBatch queued commands,
// decides them in arrival order against the evolving aggregate (each
// command's events are applied before the next command is decided) and
// appends all resulting events in ONE append: one expected-version check and
// one fsync per round, however many buyers crowd a hot stream. Each command
// is then acked with its own events or its own business error; a rejected
// command never fails the others. If the combined append fails for another
// reason than a conflict, the round is redone one command per append, so a
// single bad command (say, a reused command ID) fails alone. Different
// streams run in parallel.
//
// decide runs on that goroutine with the aggregate locked: it must not block,
// do IO, or keep the aggregate after it returns; it must only read it (the
// domain's decisions return events and change nothing). Execute returns when
// its command is acked or ctx is done (a caller serving its stream finishes
// the round under way first); a command whose ctx ends after it was taken
// into a round may still be appended: retry it with the same command ID to
// learn its outcome.
package app

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/livecore/livecore/domain/event"
)

// Aggregate is what the service folds: a domain aggregate whose Apply
// evolves it by one event and never fails.
type Aggregate interface {
	Apply(e event.Event)
}

// Store is the part of the event store the service needs.
type Store interface {
	event.Appender
	event.StreamReader
}

// Command identifies one command and says who caused it.
type Command struct {
	// ID is unique per command and the same for its retries (an
	// Idempotency-Key scoped by tenant, a saga step key); never random per try.
	// Event IDs derive from it and stores keep event IDs unique across
	// streams, so a step that writes several streams (reserving each SKU of
	// an order) needs one ID per stream, e.g. key + "/" + stream; reusing an
	// ID on another stream fails that command with
	// event.ErrIdempotencyConflict.
	ID       string
	Metadata event.Metadata
	// Creates says the command normally starts its stream (placing an
	// order under a new ID). When the stream is not cached, its first
	// round then skips reading the stream: it decides against an empty
	// aggregate and appends expecting no stream. If the stream exists
	// after all, the append fails its expected version and the round is
	// redone after reading the stream, as for any conflict; if the
	// command's events were appended before (a retry), the store returns
	// the earlier append, which lies at or below the head read before the
	// round, and the round is redone after reading the stream, so the
	// retry replays. Only with a store that reports its head
	// (event.HeadReader); otherwise Creates is ignored.
	Creates bool
}

// Result is what a command appended.
type Result struct {
	// Events are the command's events, as decided or, for a replay, as
	// decoded from the store. Empty when the decision was a no-op.
	Events []event.Event
	// FirstVersion and LastVersion are the stream versions of Events (0 when
	// there are none).
	FirstVersion, LastVersion uint64
	// Replayed is true when the command had been appended before and nothing
	// new was appended.
	Replayed bool
}

// Errors of the service itself (business errors come from decide).
var (
	ErrInvalidCommand = errors.New("invalid command")
	// ErrAggregateMismatch: two commands folded one stream into different Go
	// types (a wiring bug).
	ErrAggregateMismatch = errors.New("stream folded into another aggregate type")
	// ErrDecidePanicked: decide panicked; the panic value is in the message.
	ErrDecidePanicked = errors.New("decide panicked")
)

// Config configures a Service.
type Config struct {
	Store    Store
	Registry *event.Registry
	// MaxRetries is how often a conflicting round is reloaded and decided
	// again before the conflict is returned. Default 5; negative: none.
	MaxRetries int
	// CacheSize is how many streams' folded aggregates are kept. Default
	// 10,000. Busy streams (commands queued or running) are never evicted.
	CacheSize int
	// MaxBatch is the most commands decided into one append. Default 512.
	MaxBatch int
	// ReadBatch is how many events one ReadStream call fetches while
	// folding. Default 1,000.
	ReadBatch int
}

func (c *Config) setDefaults() {
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = 5
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 10_000
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = 1000
	}
}

// Validate reports a missing store or registry.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("app: config: Store required")
	case c.Registry == nil:
		return errors.New("app: config: Registry required")
	}
	return nil
}

// Service executes commands. Make one with New; it is safe for concurrent
// use and needs no Close: its goroutines end when their queues are empty.
type Service struct {
	store      Store
	reg        *event.Registry
	maxRetries int
	maxBatch   int
	readBatch  int
	cache      *cache
	// head reads the store's head (nil: the store has none, and
	// Command.Creates is ignored).
	head  func(context.Context) (uint64, error)
	stats struct{ rounds, appends, commands, events, conflicts, refolds, blind atomic.Int64 }
}

// New returns a Service; it fails if cfg does not Validate.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		store: cfg.Store, reg: cfg.Registry,
		maxRetries: cfg.MaxRetries, maxBatch: cfg.MaxBatch, readBatch: cfg.ReadBatch,
		cache: newCache(cfg.CacheSize),
	}
	if h, ok := cfg.Store.(event.HeadReader); ok {
		s.head = h.Head
	}
	return s, nil
}

// Stats are running totals since New.
type Stats struct {
	Rounds    int64 // decide-and-append rounds
	Appends   int64 // successful appends
	Commands  int64 // commands acked
	Events    int64 // events appended
	Conflicts int64 // appends refused for a wrong expected version
	Refolds   int64 // streams folded from version 0
	// Blind counts rounds of creating commands decided without reading
	// their stream (Command.Creates).
	Blind int64
}

// Stats returns the running totals.
func (s *Service) Stats() Stats {
	return Stats{
		Rounds: s.stats.rounds.Load(), Appends: s.stats.appends.Load(), Commands: s.stats.commands.Load(),
		Events: s.stats.events.Load(), Conflicts: s.stats.conflicts.Load(), Refolds: s.stats.refolds.Load(),
		Blind: s.stats.blind.Load(),
	}
}

// Execute runs cmd against stream: newAgg makes the empty aggregate the
// stream is folded into, decide returns the command's events or a business
// error. See the package doc for replays, retries, batching and the rules
// decide must follow. Errors: ErrInvalidCommand (no command ID), decide's
// error, a *event.ConcurrencyError after the retries, the store's errors
// wrapped with the stream, ctx's error.
func Execute[A Aggregate](ctx context.Context, s *Service, stream string, newAgg func() A, cmd Command, decide func(A) ([]event.Event, error)) (Result, error) {
	if cmd.ID == "" {
		return Result{}, fmt.Errorf("%w: command ID required", ErrInvalidCommand)
	}
	if err := event.ValidateStreamID(stream); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	p := &pending{
		ctx:    ctx,
		cmd:    cmd,
		newAgg: func() Aggregate { return newAgg() },
		decide: func(agg Aggregate) ([]event.Event, error) {
			a, ok := agg.(A)
			if !ok {
				return nil, fmt.Errorf("%w: %s holds %T", ErrAggregateMismatch, stream, agg)
			}
			return decide(a)
		},
		done: make(chan struct{}),
	}
	if e := s.submit(stream, p); e != nil {
		// No goroutine serves the stream: this one does, at least until
		// its own command is acked.
		s.drainUntil(context.WithoutCancel(ctx), e, p)
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Query calls read with the cached aggregate of stream, caught up with the
// store, and its version. read runs with the aggregate locked: it must not
// keep the aggregate or block.
func Query[A Aggregate](ctx context.Context, s *Service, stream string, newAgg func() A, read func(a A, version uint64)) error {
	e := s.cache.get(stream)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.catchUp(ctx, e, func() Aggregate { return newAgg() }); err != nil {
		e.reset()
		return fmt.Errorf("load %s: %w", stream, err)
	}
	a, ok := e.agg.(A)
	if !ok {
		return fmt.Errorf("%w: %s holds %T", ErrAggregateMismatch, stream, e.agg)
	}
	read(a, e.version)
	return nil
}

// Load folds stream from the store into a new aggregate, bypassing the
// cache, and returns it with its version.
func Load[A Aggregate](ctx context.Context, s *Service, stream string, newAgg func() A) (A, uint64, error) {
	e := &entry{stream: stream}
	if err := s.catchUp(ctx, e, func() Aggregate { return newAgg() }); err != nil {
		var zero A
		return zero, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	return e.agg.(A), e.version, nil
}

// pending is one queued command and, once acked, its outcome.
type pending struct {
	ctx    context.Context
	cmd    Command
	newAgg func() Aggregate
	decide func(Aggregate) ([]event.Event, error)
	done   chan struct{}
	res    Result
	err    error

	// per-round state
	events []event.Event
	props  []event.Proposed
	dupOf  *pending // an earlier command with the same ID in this round
}

func (p *pending) ack() { close(p.done) }

// entry is one stream's cached aggregate and command queue.
type entry struct {
	stream string

	// mu guards the fields below; the stream's goroutine holds it for a
	// whole round.
	mu      sync.Mutex
	agg     Aggregate // nil: not folded
	version uint64
	ids     map[string]uint64 // event ID -> version, to recognise replays

	// qmu guards queue and running; the cache's lock is taken before it.
	qmu     sync.Mutex
	queue   []*pending
	running bool

	elem *list.Element
}

// reset drops the folded state: the next round refolds from version 0.
func (e *entry) reset() { e.agg, e.version, e.ids = nil, 0, nil }

func (e *entry) busy() bool {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	return e.running || len(e.queue) > 0
}

// submit queues p on its stream. If no goroutine serves the stream, it
// returns the entry, marked as served: the caller must serve it
// (drainUntil). The cache lock is held while queueing so the entry cannot
// be evicted between lookup and queueing.
func (s *Service) submit(stream string, p *pending) *entry {
	s.cache.mu.Lock()
	e := s.cache.getLocked(stream)
	e.qmu.Lock()
	e.queue = append(e.queue, p)
	start := !e.running
	e.running = true
	e.qmu.Unlock()
	s.cache.mu.Unlock()
	if start {
		return e
	}
	return nil
}

// drainUntil serves e on the caller's goroutine (its stack is grown
// already, and no goroutine hands the outcome over) until p is acked, then
// hands the commands still queued to a goroutine of their own (drain).
// ctx must not be cancelled with p's: the rounds serve other commands too.
func (s *Service) drainUntil(ctx context.Context, e *entry, p *pending) {
	defer func() {
		if v := recover(); v != nil {
			// A bug in a round (decide's panics are caught in it): crash
			// as a stream's own goroutine would, rather than let the
			// caller's recover (an HTTP server's) leave the stream locked
			// and its queued commands waiting for good.
			go panic(fmt.Sprintf("app: round of %s panicked: %v", e.stream, v))
			select {}
		}
	}()
	for {
		batch, ok := s.next(e)
		if !ok {
			return
		}
		s.serve(ctx, e, batch)
		select {
		case <-p.done:
		default:
			continue
		}
		e.qmu.Lock()
		if len(e.queue) == 0 {
			e.running = false
			e.qmu.Unlock()
			return
		}
		e.qmu.Unlock()
		go s.drain(ctx, e)
		return
	}
}

// drain runs rounds until the queue is empty.
func (s *Service) drain(ctx context.Context, e *entry) {
	for {
		batch, ok := s.next(e)
		if !ok {
			return
		}
		s.serve(ctx, e, batch)
	}
}

// next takes the next batch off e's queue; with none, e is no longer
// served (false).
func (s *Service) next(e *entry) ([]*pending, bool) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	n := min(len(e.queue), s.maxBatch)
	if n == 0 {
		e.running = false
		return nil, false
	}
	batch := e.queue[:n:n]
	e.queue = e.queue[n:]
	if len(e.queue) == 0 {
		e.queue = nil // let the backing array go
	}
	return batch, true
}

// serve runs one round for batch, acking commands whose ctx has ended.
func (s *Service) serve(ctx context.Context, e *entry, batch []*pending) {
	live := batch[:0:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.err = err
			p.ack()
			continue
		}
		live = append(live, p)
	}
	if len(live) > 0 {
		e.mu.Lock()
		s.round(ctx, e, live)
		e.mu.Unlock()
	}
}

// round decides batch and appends its events in one append, retrying
// conflicts; it acks every command in batch. The caller holds e.mu.
func (s *Service) round(ctx context.Context, e *entry, batch []*pending) {
	mayBlind := s.head != nil && creates(batch)
	for attempt := 0; ; attempt++ {
		s.stats.rounds.Add(1)
		// blind: a first round of creating commands on a stream that is
		// not cached decides without reading it (see Command.Creates);
		// head is the store's head before, to tell a retry's earlier
		// append from this one.
		blind, head := false, uint64(0)
		if mayBlind && e.agg == nil {
			mayBlind = false
			if h, err := s.head(ctx); err == nil {
				blind, head = true, h
				e.agg, e.version, e.ids = batch[0].newAgg(), 0, map[string]uint64{}
				s.stats.refolds.Add(1)
				s.stats.blind.Add(1)
			}
		}
		if !blind {
			if err := s.catchUp(ctx, e, batch[0].newAgg); err != nil {
				e.reset()
				s.finish(batch, fmt.Errorf("load %s: %w", e.stream, err))
				return
			}
		}
		all, decided := s.decideAll(ctx, e, batch)
		if len(all) == 0 {
			if blind {
				// Decided against a stream that was never read (a
				// business error or no-op): decide again on what it holds.
				e.reset()
				attempt--
				continue
			}
			s.finish(batch, nil)
			return
		}
		res, err := s.store.Append(ctx, e.stream, event.Exact(e.version), all)
		if err == nil && blind && res.FirstPosition <= head {
			// The store recognised these event IDs from an earlier
			// append: read the stream, so the commands replay it.
			e.reset()
			attempt--
			continue
		}
		if err == nil {
			s.committed(e, decided, res, len(all))
			s.finish(batch, nil)
			return
		}
		// The aggregate holds the round's tentative events: refold.
		e.reset()
		switch {
		case errors.Is(err, event.ErrWrongExpectedVersion) && blind:
			// The stream exists: read it and decide again (not a race with
			// another writer, so no retry is counted against the limit).
			attempt--
			continue
		case errors.Is(err, event.ErrWrongExpectedVersion):
			s.stats.conflicts.Add(1)
			if attempt < s.maxRetries {
				continue
			}
			s.finish(batch, fmt.Errorf("append %s after %d retries: %w", e.stream, attempt, err))
		case len(decided) > 1:
			for _, p := range batch {
				s.round(ctx, e, []*pending{p})
			}
		default:
			s.finish(batch, fmt.Errorf("append %s: %w", e.stream, err))
		}
		return
	}
}

// creates reports whether every command of batch creates its stream.
func creates(batch []*pending) bool {
	for _, p := range batch {
		if !p.cmd.Creates {
			return false
		}
	}
	return true
}

// catchUp folds into e the events appended since its version, starting
// from a new aggregate if e has none.
func (s *Service) catchUp(ctx context.Context, e *entry, newAgg func() Aggregate) error {
	if e.agg == nil {
		e.agg, e.version, e.ids = newAgg(), 0, map[string]uint64{}
		s.stats.refolds.Add(1)
	}
	for {
		envs, err := s.store.ReadStream(ctx, e.stream, e.version+1, s.readBatch)
		if err != nil {
			return err
		}
		for _, env := range envs {
			if env.Version != e.version+1 {
				return fmt.Errorf("%w: read version %d after %d", event.ErrCorrupt, env.Version, e.version)
			}
			ev, err := s.reg.DecodeEnvelope(env)
			if err != nil {
				return fmt.Errorf("version %d: %w", env.Version, err)
			}
			e.agg.Apply(ev)
			e.version = env.Version
			e.ids[env.ID] = env.Version
		}
		if len(envs) < s.readBatch {
			return nil
		}
	}
}

// decideAll decides every command of the round in order, applying each
// one's events before the next decides, and returns all proposed events and
// the commands that proposed some. Replays and business errors are settled
// on their pending.
func (s *Service) decideAll(ctx context.Context, e *entry, batch []*pending) (all []event.Proposed, decided []*pending) {
	byID := make(map[string]*pending, len(batch))
	for _, p := range batch {
		p.events, p.props, p.dupOf, p.res, p.err = nil, nil, nil, Result{}, nil
		if first, dup := byID[p.cmd.ID]; dup {
			p.dupOf = first
			continue
		}
		byID[p.cmd.ID] = p
		if v, ok := e.ids[event.DeriveID(p.cmd.ID, 0)]; ok {
			p.res, p.err = s.replay(ctx, e.stream, p.cmd.ID, v)
			continue
		}
		events, err := safeDecide(p, e.agg)
		if err != nil {
			p.err = err
			continue
		}
		props := make([]event.Proposed, len(events))
		for i, ev := range events {
			if props[i], err = s.reg.Propose(event.DeriveID(p.cmd.ID, i), ev, p.cmd.Metadata); err != nil {
				break
			}
		}
		if err != nil {
			p.err = err
			continue
		}
		if len(events) == 0 {
			continue
		}
		for _, ev := range events {
			e.agg.Apply(ev)
		}
		p.events, p.props = events, props
		all = append(all, props...)
		decided = append(decided, p)
	}
	return all, decided
}

func safeDecide(p *pending, agg Aggregate) (events []event.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			events, err = nil, fmt.Errorf("%w: %v", ErrDecidePanicked, r)
		}
	}()
	return p.decide(agg)
}

// committed records a successful append: versions, IDs and results.
func (s *Service) committed(e *entry, decided []*pending, res event.AppendResult, n int) {
	s.stats.appends.Add(1)
	s.stats.events.Add(int64(n))
	if res.FirstVersion != e.version+1 || res.LastVersion != e.version+uint64(n) {
		// Not where this round expected (the store recognised an earlier
		// append): trust the store and refold next time.
		e.reset()
	} else {
		e.version = res.LastVersion
	}
	v := res.FirstVersion
	for _, p := range decided {
		p.res = Result{Events: p.events, FirstVersion: v, LastVersion: v + uint64(len(p.events)) - 1}
		for i, pr := range p.props {
			if e.ids != nil {
				e.ids[pr.ID] = v + uint64(i)
			}
		}
		v += uint64(len(p.events))
	}
}

// finish acks every command of the round with its own outcome or, when the
// round failed (err set), with err: a business error or no-op decided in a
// failed round may rest on tentative events of earlier commands that were
// never stored. Replays keep their outcome: it was read from the store.
func (s *Service) finish(batch []*pending, err error) {
	for _, p := range batch {
		if p.dupOf != nil || err == nil || p.err == nil && p.res.Replayed {
			continue
		}
		p.res, p.err = Result{}, err
	}
	for _, p := range batch {
		if d := p.dupOf; d != nil {
			p.res, p.err = d.res, d.err
			if p.err == nil && len(p.res.Events) > 0 {
				p.res.Replayed = true
			}
		}
		s.stats.commands.Add(1)
		p.ack()
	}
}

// replay reads the events command id appended from version v on.
func (s *Service) replay(ctx context.Context, stream, id string, v uint64) (Result, error) {
	res := Result{FirstVersion: v, Replayed: true}
	for {
		envs, err := s.store.ReadStream(ctx, stream, v, 16)
		if err != nil {
			return Result{}, fmt.Errorf("replay %s: %w", stream, err)
		}
		for _, env := range envs {
			if env.ID != event.DeriveID(id, len(res.Events)) {
				return res, nil
			}
			ev, err := s.reg.DecodeEnvelope(env)
			if err != nil {
				return Result{}, fmt.Errorf("replay %s version %d: %w", stream, env.Version, err)
			}
			res.Events = append(res.Events, ev)
			res.LastVersion = env.Version
		}
		if len(envs) < 16 {
			return res, nil
		}
		v += uint64(len(envs))
	}
}

// cache is an LRU of stream entries.
type cache struct {
	mu      sync.Mutex
	size    int
	entries map[string]*entry
	lru     *list.List // front: most recent
}

func newCache(size int) *cache {
	return &cache{size: size, entries: map[string]*entry{}, lru: list.New()}
}

func (c *cache) get(stream string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(stream)
}

// getLocked returns stream's entry, making it the most recent, creating it
// and evicting idle least-recent entries past the size as needed.
func (c *cache) getLocked(stream string) *entry {
	if e, ok := c.entries[stream]; ok {
		c.lru.MoveToFront(e.elem)
		return e
	}
	e := &entry{stream: stream}
	e.elem = c.lru.PushFront(e)
	c.entries[stream] = e
	for el := c.lru.Back(); len(c.entries) > c.size && el != nil; {
		prev := el.Prev()
		if old := el.Value.(*entry); old != e && !old.busy() {
			c.lru.Remove(el)
			delete(c.entries, old.stream)
		}
		el = prev
	}
	return e
}
