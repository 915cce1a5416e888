// Package kafka publishes the event store to Kafka exactly once (Bridge),
// checks that it did (Verify), and measures what that costs (RunBench).
// The embedded subpackage runs an in-process broker for `livecore dev`.
//
// # Records
//
// Every event becomes one record in the topic of its stream's category
// (Topics.TopicFor: livecore.<category>.v1). The key is the stream ID, so
// one stream stays in one partition and in order (adding partitions to a
// topic remaps keys: don't, or republish to a new topic). The value is the
// event's data; the headers are CloudEvents 1.0 binary mode (ce_id,
// ce_type, ce_source = the publishing region, ce_time, ce_subject = the
// stream, content-type) plus lc_ headers carrying the rest of the envelope
// (version, position, stream hashes, metadata, recorded-at, schema version),
// so another region rebuilds the envelope byte for byte and checks its
// hash: see EncodeRecord and DecodeRecord.
//
// # Exactly once
//
// The bridge's checkpoint (the global position of the last published
// event) is a record in the compacted topic Topics.Checkpoint, key
// Config.Name, written in the same Kafka transaction as the events it
// covers. A read_committed consumer therefore sees a transaction's events
// and its checkpoint together or not at all, and on start the bridge reads
// the checkpoint back, read_committed, after its producer-ID
// initialisation has fenced every older instance (transactional ID
// livecore-bridge-<region>) and settled their open transaction. See Bridge
// for the loop and for what happens on each kind of failure.
//
// Consumers must read with isolation level read_committed; with
// read_uncommitted they also see records of aborted transactions, which the
// bridge publishes again.
//
// # Metrics
//
// New registers on Config.Registerer (never the global registry):
// livecore_bridge_lag_events, _lag_seconds, _last_published_position,
// _events_published_total, _transactions_committed_total,
// _transactions_aborted_total, _sessions_total and _commit_seconds, each
// labelled bridge=<Name>, mode=<exactly-once|at-least-once>.
package kafka
