package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livecore/livecore/domain/event"
)

// Errors that stop Run. Everything else (broker or network trouble, an
// ambiguous commit) is retried with a fresh client.
var (
	// ErrFenced: another bridge with the same transactional ID started (or
	// the broker timed our transaction out and bumped the epoch). This
	// instance's open transaction is aborted and it stops, rather than
	// fence the newer instance in turn. Restarting it makes it the owner.
	ErrFenced = errors.New("kafka bridge fenced by a newer instance with the same transactional ID")
	// ErrCheckpointAhead: Kafka says events were published beyond the
	// store's head: the store lost acknowledged events or is not the store
	// this bridge published from. The bridge refuses to skip or reuse
	// positions.
	ErrCheckpointAhead = errors.New("kafka checkpoint is ahead of the event store")
	// ErrCheckpointMismatch: the event at the checkpoint's position is not
	// the one that was published there (another store's history).
	ErrCheckpointMismatch = errors.New("kafka checkpoint does not match the event store")
	// ErrEventTooLarge: an event's record exceeds the producer's or the
	// broker's maximum message size. Retrying cannot help and skipping it
	// would lose it, so the bridge stops; raise max.message.bytes on the
	// topic (and kgo.ProducerBatchMaxBytes in ClientOpts) and restart.
	ErrEventTooLarge = errors.New("event too large for a Kafka record")
)

// Bridge publishes the event store's $all to Kafka, exactly once.
//
// # Transaction loop
//
// Run builds a transactional producer (transactional ID
// Config.TransactionalID), initialises its producer ID (which fences any
// older instance and aborts its open transaction), reads the checkpoint
// back read_committed, and subscribes to $all after it. Events are produced
// into one open transaction (topic per category, key = stream ID, headers
// per EncodeRecord) until MaxEvents or MaxDelay; then the checkpoint record
// is produced into the same transaction, every record is flushed (acks=all),
// and the transaction is committed. Consumers with read_committed see a
// transaction's events and its checkpoint together or not at all, so the
// checkpoint never disagrees with what is visible.
//
// # Failures
//
// Any error inside a session (a produce that failed, a commit that returned
// an error, an abort that failed, a lost connection) ends the session: the
// client is closed, never reused, and a new one is built after a backoff.
// The new client's producer-ID initialisation settles the old transaction
// on the broker (committed if the commit had reached it, aborted
// otherwise), and the checkpoint read after it tells the truth either way,
// so the bridge resumes exactly after the last committed event. Only
// ErrFenced, ErrCheckpointAhead, ErrCheckpointMismatch, a corrupt or
// closed store and ctx end Run.
//
// A Bridge is one publisher: Run must not be called concurrently with
// itself. Published and WaitPublished are safe for concurrent use.
type Bridge struct {
	cfg Config
	m   *metrics
	log *slog.Logger

	running atomic.Bool
	commits atomic.Uint64   // transactions committed by this Bridge
	topics  map[string]bool // topics known to exist; Run's goroutine only

	mu        sync.Mutex
	published uint64
	moved     chan struct{} // closed and replaced when published moves
}

// New validates cfg and returns a Bridge. It registers the metrics on
// cfg.Registerer (an error if they are already registered there, e.g. two
// bridges with one name).
func New(cfg Config) (*Bridge, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Name, cfg.Mode)
	if err != nil {
		return nil, fmt.Errorf("kafka bridge metrics: %w", err)
	}
	return &Bridge{
		cfg:    cfg,
		m:      m,
		log:    cfg.Logger.With("component", "kafka-bridge", "bridge", cfg.Name, "mode", cfg.Mode.String()),
		topics: map[string]bool{},
		moved:  make(chan struct{}),
	}, nil
}

// Published returns the global position of the last event this bridge
// knows to be committed to Kafka (0 before the first session read the
// checkpoint).
func (b *Bridge) Published() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.published
}

// WaitPublished blocks until an event at position or later is committed
// to Kafka by this bridge (the synchronous durability mode waits on it), or
// ctx is done.
func (b *Bridge) WaitPublished(ctx context.Context, position uint64) error {
	for {
		b.mu.Lock()
		p, moved := b.published, b.moved
		b.mu.Unlock()
		if p >= position {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		}
	}
}

func (b *Bridge) setPublished(p uint64) {
	b.mu.Lock()
	b.published = p
	close(b.moved)
	b.moved = make(chan struct{})
	b.mu.Unlock()
	b.m.lastPublished.Set(float64(p))
}

// Run publishes until ctx is done (returning ctx's error after committing
// the open transaction, if it can) or a fatal error (see the package
// errors). It retries everything else forever, with backoff, logging each
// failure.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("kafka bridge: Run called twice")
	}
	defer b.running.Store(false)
	backoff := b.cfg.RetryBackoff
	for {
		progressed, err := b.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fatal(err) {
			b.log.Error("kafka bridge stopped", "err", err)
			return err
		}
		if progressed {
			backoff = b.cfg.RetryBackoff
		}
		b.log.Warn("kafka bridge session failed; rebuilding the client", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, b.cfg.MaxRetryBackoff)
	}
}

func fatal(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrCheckpointAhead) || errors.Is(err, ErrCheckpointMismatch) || errors.Is(err, ErrEventTooLarge) ||
		errors.Is(err, event.ErrCorrupt) || errors.Is(err, event.ErrClosed)
}

// isFenced reports whether a Kafka error means a newer producer epoch owns
// the transactional ID, or our transaction was ended by someone else: an
// InvalidTxnState answer to a commit means the coordinator already aborted
// the transaction (a newer instance's InitProducerID, or the timeout).
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

func (b *Bridge) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.Brokers...),
		kgo.ClientID("livecore-bridge"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.MaxBufferedRecords(2*b.cfg.MaxEvents + 1000),
		kgo.ProducerLinger(5 * time.Millisecond),
		// Under KIP-890 a transaction's first produce can meet
		// CONCURRENT_TRANSACTIONS while the previous commit's markers are
		// still being written; kgo retries it after a metadata refresh,
		// which the default 5 s minimum metadata age would delay.
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.WithLogger(kgoLogger{b.log}),
	}
	if b.cfg.Mode == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(b.cfg.TransactionalID),
			kgo.TransactionTimeout(b.cfg.TransactionTimeout),
		)
	}
	return append(opts, b.cfg.ClientOpts...)
}

// session is one producer client's life: from fencing to the first error.
type session struct {
	b    *Bridge
	cl   *kgo.Client
	pctx context.Context // records live past Run's ctx so a shutdown can commit

	errMu  sync.Mutex
	prodEr error // first produce error

	txn *openTxn // nil between transactions
}

type openTxn struct {
	began       time.Time
	events      int
	first, last *event.Envelope
}

func (s *session) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, kerr.MessageTooLarge) {
		pos := "?"
		for _, h := range r.Headers {
			if h.Key == HeaderPosition {
				pos = string(h.Value)
			}
		}
		err = fmt.Errorf("%w: position %s, stream %s, %d bytes of data: %w", ErrEventTooLarge, pos, r.Key, len(r.Value), err)
	}
	s.errMu.Lock()
	if s.prodEr == nil {
		s.prodEr = err
	}
	s.errMu.Unlock()
}

func (s *session) produceErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.prodEr
}

// session runs one client until an error. progressed reports whether it
// committed anything (which resets the backoff).
func (b *Bridge) session(ctx context.Context) (progressed bool, err error) {
	cl, err := kgo.NewClient(b.clientOpts()...)
	if err != nil {
		return false, fmt.Errorf("kafka client: %w", err)
	}
	b.m.sessions.Inc()
	s := &session{b: b, cl: cl, pctx: context.WithoutCancel(ctx)}
	committedAtStart := b.commits.Load()
	defer func() {
		s.close(ctx, err)
		progressed = b.commits.Load() > committedAtStart
	}()

	if b.cfg.Mode == ExactlyOnce {
		// InitProducerID: bumps the epoch, fences older instances and
		// settles their open transaction before we read the checkpoint.
		if _, _, err := cl.ProducerID(ctx); err != nil {
			if isFenced(err) {
				return false, fmt.Errorf("init producer id: %w: %w", ErrFenced, err)
			}
			return false, fmt.Errorf("init producer id: %w", err)
		}
	}
	if err := b.ensureTopic(ctx, cl, b.cfg.Topics.checkpointSpec()); err != nil {
		return false, err
	}
	cp, _, err := readCheckpoint(ctx, cl, b.cfg.Topics.Checkpoint, b.cfg.Name)
	if err != nil {
		return false, err
	}
	if err := b.checkStore(ctx, cp); err != nil {
		return false, err
	}
	b.setPublished(cp.Position)
	b.updateLag(ctx)
	b.log.Info("kafka bridge session started", "checkpoint", cp.Position)
	if h := b.cfg.Hooks.SessionStart; h != nil {
		h(ctx, cp.Position)
	}
	return false, s.loop(ctx, cp.Position)
}

// checkStore refuses a checkpoint the store cannot back.
func (b *Bridge) checkStore(ctx context.Context, cp Checkpoint) error {
	if cp.Position == 0 {
		return nil
	}
	got, err := b.cfg.Source.ReadAll(ctx, cp.Position, 1)
	if err != nil {
		return fmt.Errorf("read checkpointed event %d: %w", cp.Position, err)
	}
	if len(got) == 0 || got[0].Position != cp.Position {
		head, _ := b.cfg.Source.Head(ctx)
		return fmt.Errorf("%w: checkpoint at position %d, store head %d", ErrCheckpointAhead, cp.Position, head)
	}
	if (cp.EventID != "" && got[0].ID != cp.EventID) || (!cp.GlobalHash.IsZero() && got[0].GlobalHash != cp.GlobalHash) {
		return fmt.Errorf("%w: position %d is event %s (global hash %s) in the store, %s (%s) in Kafka",
			ErrCheckpointMismatch, cp.Position, got[0].ID, got[0].GlobalHash, cp.EventID, cp.GlobalHash)
	}
	return nil
}

func (b *Bridge) ensureTopic(ctx context.Context, cl *kgo.Client, spec topicSpec) error {
	if b.topics[spec.name] {
		return nil
	}
	if err := createTopics(ctx, cl, spec); err != nil {
		return err
	}
	b.topics[spec.name] = true
	return nil
}

// loop subscribes after checkpoint and runs transactions until an error.
func (s *session) loop(ctx context.Context, checkpoint uint64) error {
	b := s.b
	sctx, cancel := context.WithCancel(ctx)
	batches := make(chan []event.Envelope, 4)
	subDone := make(chan error, 1)
	go func() {
		subDone <- b.cfg.Source.SubscribeAll(sctx, checkpoint+1, func(ctx context.Context, batch []event.Envelope) error {
			select {
			case batches <- slices.Clone(batch):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	subRunning := true
	defer func() {
		cancel()
		if subRunning {
			<-subDone
		}
	}()

	next := checkpoint + 1
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	lag := time.NewTicker(time.Second)
	defer lag.Stop()
	for {
		select {
		case batch := <-batches:
			for i := range batch {
				e := &batch[i]
				if e.Position != next {
					return fmt.Errorf("subscription: %w: expected position %d, got %d", event.ErrCorrupt, next, e.Position)
				}
				if s.txn == nil {
					if err := s.begin(); err != nil {
						return err
					}
					timer.Reset(b.cfg.MaxDelay)
				}
				if err := s.produce(ctx, e); err != nil {
					return err
				}
				next++
				if s.txn.events >= b.cfg.MaxEvents {
					timer.Stop()
					if err := s.commit(ctx); err != nil {
						return err
					}
				}
			}
			if s.txn != nil && time.Since(s.txn.began) >= b.cfg.MaxDelay {
				timer.Stop()
				if err := s.commit(ctx); err != nil {
					return err
				}
			}
		case <-timer.C:
			if s.txn != nil {
				if err := s.commit(ctx); err != nil {
					return err
				}
			}
		case err := <-subDone:
			subRunning = false
			if ctx.Err() != nil {
				return s.shutdown(ctx)
			}
			return fmt.Errorf("subscribe $all after %d: %w", next-1, err)
		case <-lag.C:
			b.updateLag(ctx)
		case <-ctx.Done():
			return s.shutdown(ctx)
		}
	}
}

// shutdownCommitLimit bounds the commit of the open transaction when Run's
// ctx ends, so an unreachable broker cannot hold a shutdown for the whole
// transaction timeout.
const shutdownCommitLimit = 10 * time.Second

// shutdown commits the open transaction (if any) on the way out.
func (s *session) shutdown(ctx context.Context) error {
	if s.txn != nil {
		if err := s.commitWithin(ctx, min(shutdownCommitLimit, s.b.cfg.TransactionTimeout)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *session) begin() error {
	if s.b.cfg.Mode == ExactlyOnce {
		if err := s.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
	}
	s.txn = &openTxn{began: time.Now()}
	return nil
}

func (s *session) produce(ctx context.Context, e *event.Envelope) error {
	if err := s.produceErr(); err != nil {
		return s.classify(fmt.Errorf("produce: %w", err))
	}
	topic := s.b.cfg.Topics.TopicFor(event.Category(e.StreamID))
	if err := s.b.ensureTopic(ctx, s.cl, s.b.cfg.Topics.eventSpec(topic)); err != nil {
		return err
	}
	s.cl.Produce(s.pctx, EncodeRecord(e, topic, s.b.cfg.Region), s.promise)
	t := s.txn
	if t.first == nil {
		t.first = e
	}
	t.last = e
	t.events++
	return nil
}

// classify turns a fencing error into ErrFenced.
func (s *session) classify(err error) error {
	if s.b.cfg.Mode == ExactlyOnce && isFenced(err) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// commit ends the open transaction: checkpoint record, flush, commit.
func (s *session) commit(ctx context.Context) error {
	return s.commitWithin(ctx, s.b.cfg.TransactionTimeout)
}

func (s *session) commitWithin(ctx context.Context, limit time.Duration) error {
	b, t := s.b, s.txn
	start := time.Now()
	cp := Checkpoint{
		Position:   t.last.Position,
		EventID:    t.last.ID,
		GlobalHash: t.last.GlobalHash,
		Region:     b.cfg.Region,
		WrittenAt:  b.cfg.Now().UTC(),
	}
	// Finish a commit even when ctx is canceled (a clean shutdown), but no
	// later than the broker would abort the transaction anyway.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	info := TxnInfo{FirstPosition: t.first.Position, LastPosition: t.last.Position, Events: t.events}

	if b.cfg.Mode == AtLeastOnce {
		if err := s.flush(cctx); err != nil {
			return err
		}
		s.cl.Produce(s.pctx, cp.record(b.cfg.Topics.Checkpoint, b.cfg.Name), s.promise)
		if err := s.flush(cctx); err != nil {
			return err
		}
	} else {
		s.cl.Produce(s.pctx, cp.record(b.cfg.Topics.Checkpoint, b.cfg.Name), s.promise)
		if err := s.flush(cctx); err != nil {
			return err
		}
		if h := b.cfg.Hooks.BeforeCommit; h != nil {
			info.ProducerID, info.ProducerEpoch, _ = s.cl.ProducerID(cctx)
			h(cctx, info)
		}
		if err := s.cl.EndTransaction(cctx, kgo.TryCommit); err != nil {
			// Ambiguous or refused: the broker may or may not have
			// committed. The client is not used again (close never
			// aborts it); the next session's InitProducerID settles it
			// and its checkpoint read tells which.
			s.txn = nil
			b.m.aborted.Inc()
			return s.classify(fmt.Errorf("commit transaction %d..%d: %w", info.FirstPosition, info.LastPosition, err))
		}
	}
	s.txn = nil
	b.m.commitSeconds.Observe(time.Since(start).Seconds())
	b.m.committed.Inc()
	b.commits.Add(1)
	b.m.published.Add(float64(info.Events))
	b.setPublished(cp.Position)
	b.updateLag(cctx)
	if h := b.cfg.Hooks.AfterCommit; h != nil {
		h(ctx, info)
	}
	return nil
}

// flush waits for every produced record and returns the first produce
// error.
func (s *session) flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := s.produceErr(); err != nil {
		return s.classify(fmt.Errorf("produce: %w", err))
	}
	return nil
}

// close ends the session's client. An open transaction (one that did not
// reach EndTransaction) is aborted first, best effort, so read_committed
// consumers are not held back until the transaction timeout; if the abort
// fails the client is closed all the same, and the next instance's
// InitProducerID aborts the transaction.
func (s *session) close(ctx context.Context, cause error) {
	if s.txn != nil {
		s.b.m.aborted.Inc()
		if s.b.cfg.Mode == ExactlyOnce && !errors.Is(cause, ErrFenced) {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := s.cl.AbortBufferedRecords(actx)
			if err == nil {
				err = s.cl.EndTransaction(actx, kgo.TryAbort)
			}
			cancel()
			if err != nil {
				s.b.log.Warn("abort failed; closing the client, the next session's fencing aborts the transaction", "err", err)
			}
		}
		s.txn = nil
	}
	s.cl.Close()
}

// updateLag refreshes the lag gauges from the store's head.
func (b *Bridge) updateLag(ctx context.Context) {
	head, err := b.cfg.Source.Head(ctx)
	if err != nil {
		return
	}
	p := b.Published()
	if head <= p {
		b.m.lagEvents.Set(0)
		b.m.lagSeconds.Set(0)
		return
	}
	b.m.lagEvents.Set(float64(head - p))
	if next, err := b.cfg.Source.ReadAll(ctx, p+1, 1); err == nil && len(next) == 1 {
		b.m.lagSeconds.Set(max(0, b.cfg.Now().Sub(next[0].RecordedAt).Seconds()))
	}
}

// kgoLogger sends franz-go's warnings and errors to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error("kgo: "+msg, keyvals...)
	case kgo.LogLevelWarn:
		k.l.Warn("kgo: "+msg, keyvals...)
	}
}
