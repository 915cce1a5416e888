package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livecore/livecore/internal/testenv"
)

// TestPostgresRoundTrip proves the real PostgreSQL server is there and that
// FreshSchema isolates the test in its own schema.
func TestPostgresRoundTrip(t *testing.T) {
	dsn := testenv.FreshSchema(t, testenv.PostgresDSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())

	var schema, fsync string
	if err := conn.QueryRow(ctx, "SELECT current_schema(), current_setting('fsync')").Scan(&schema, &fsync); err != nil {
		t.Fatalf("current_schema: %v", err)
	}
	if !strings.HasPrefix(schema, "t_testpostgresroundtrip_") {
		t.Fatalf("current_schema() = %q, want the fresh per-test schema", schema)
	}
	if fsync != "on" {
		t.Fatalf("fsync = %q; the test server must run with fsync=on", fsync)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(20,2) NOT NULL)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	want := []struct {
		id      int64
		owner   string
		balance string
	}{{1, "alice", "100.25"}, {2, "bob", "-3.50"}, {3, "carol ✓", "0.00"}}
	for _, w := range want {
		if _, err := conn.Exec(ctx, `INSERT INTO accounts (id, owner, balance) VALUES ($1, $2, $3::numeric)`, w.id, w.owner, w.balance); err != nil {
			t.Fatalf("insert %d: %v", w.id, err)
		}
	}
	// The table is in the fresh schema, not in public.
	var where string
	if err := conn.QueryRow(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'accounts' AND table_schema = current_schema()`).Scan(&where); err != nil || where != schema {
		t.Fatalf("table accounts in schema %q (err %v), want %q", where, err, schema)
	}

	rows, err := conn.Query(ctx, `SELECT id, owner, balance::text FROM accounts ORDER BY id`)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	i := 0
	for rows.Next() {
		var id int64
		var owner, balance string
		if err := rows.Scan(&id, &owner, &balance); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if i >= len(want) {
			t.Fatalf("extra row %d %q %s", id, owner, balance)
		}
		if w := want[i]; id != w.id || owner != w.owner || balance != w.balance {
			t.Errorf("row %d = (%d, %q, %s), want (%d, %q, %s)", i, id, owner, balance, w.id, w.owner, w.balance)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if i != len(want) {
		t.Fatalf("got %d rows, want %d", i, len(want))
	}

	var sum string
	if err := conn.QueryRow(ctx, `SELECT sum(balance)::text FROM accounts`).Scan(&sum); err != nil || sum != "96.75" {
		t.Fatalf("sum(balance) = %q (err %v), want 96.75", sum, err)
	}
}

// TestKafkaRoundTrip proves the real Kafka broker is there: a plain produce
// and consumer-group consume, then an aborted and a committed transaction
// read back with read_committed isolation.
func TestKafkaRoundTrip(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueTopic(t, "smoke")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer admin.Close()
	createTopic(ctx, t, admin, topic)

	// Plain produce.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer prod.Close()
	var plain []string
	for i := range 3 {
		v := fmt.Sprintf("plain-%d", i)
		plain = append(plain, v)
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}

	// Consume them back through a consumer group.
	group, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(testenv.UniqueTopic(t, "group")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("group consumer: %v", err)
	}
	got := consume(ctx, t, group, len(plain))
	group.Close()
	for i, r := range got {
		if string(r.Value) != plain[i] || string(r.Key) != fmt.Sprint(i) {
			t.Errorf("record %d = %q/%q, want %q/%q", i, r.Key, r.Value, fmt.Sprint(i), plain[i])
		}
	}

	// Transactions: one aborted, then one committed.
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(testenv.UniqueTopic(t, "txn")),
	)
	if err != nil {
		t.Fatalf("transactional producer: %v", err)
	}
	defer txn.Close()
	runTxn := func(values []string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		for _, v := range values {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s in transaction: %v", v, err)
			}
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction (commit=%v): %v", commit, err)
		}
	}
	runTxn([]string{"aborted-0", "aborted-1"}, kgo.TryAbort)
	committed := []string{"committed-0", "committed-1"}
	runTxn(committed, kgo.TryCommit)

	// read_committed: the plain records, then only the committed ones. The
	// aborted records sit before the committed ones in the log, so reading up
	// to the last committed record proves they were filtered out.
	rc, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("read_committed consumer: %v", err)
	}
	defer rc.Close()
	want := append(append([]string{}, plain...), committed...)
	got = consume(ctx, t, rc, len(want))
	for i, r := range got {
		if string(r.Value) != want[i] {
			t.Errorf("read_committed record %d = %q, want %q", i, r.Value, want[i])
		}
	}
	// Nothing more arrives (no aborted record after the committed ones either).
	pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
	defer pollCancel()
	if extra := rc.PollFetches(pollCtx).Records(); len(extra) > 0 {
		t.Errorf("unexpected extra record(s) under read_committed, first %q", extra[0].Value)
	}
}

// createTopic creates a one-partition topic with a raw CreateTopics request.
func createTopic(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = 1
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("create topic %s: %d topics in response", topic, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// consume polls until n records arrived (failing on errors or timeout) and
// returns exactly those n.
func consume(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d of %d records: %v", len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	if len(out) > n {
		t.Fatalf("got %d records, want %d; extra first: %q", len(out), n, out[n].Value)
	}
	return out
}
