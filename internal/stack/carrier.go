package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/livecore/livecore/adapters/eventstore/pebble"
	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/workflows/fulfillment"
)

// carrierRelay hands the warehouse's shipment reports (the API's
// shipment.carrier_reported events) to each order's fulfillment saga as a
// carrier signal. It follows $all from a checkpoint file, like the saga
// dispatcher: a crash re-delivers the reports after the checkpoint, which
// the saga ignores for a shipment already past that state. A report for an
// order whose saga no longer runs is logged and skipped.
type carrierRelay struct {
	store      *pebble.Store
	reg        *event.Registry
	client     sdkclient.Client
	checkpoint string
	log        *slog.Logger
}

func (c *carrierRelay) Run(ctx context.Context) error {
	from, err := readCheckpoint(c.checkpoint)
	if err != nil {
		return err
	}
	return c.store.SubscribeAll(ctx, from+1, func(ctx context.Context, batch []event.Envelope) error {
		for _, e := range batch {
			if e.Type != httpapi.TypeCarrierReported {
				continue
			}
			ev, err := c.reg.DecodeEnvelope(e)
			if err != nil {
				return fmt.Errorf("carrier relay: position %d: %w", e.Position, err)
			}
			if err := c.signal(ctx, ev.(*httpapi.CarrierReported)); err != nil {
				return err
			}
		}
		return writeCheckpoint(c.checkpoint, batch[len(batch)-1].Position)
	})
}

func (c *carrierRelay) signal(ctx context.Context, r *httpapi.CarrierReported) error {
	u := fulfillment.CarrierUpdate{ShipmentID: r.ShipmentID, Event: fulfillment.CarrierEvent(r.Event), Carrier: r.Carrier, TrackingNumber: r.TrackingNumber, Reason: r.Reason}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := c.client.SignalWorkflow(ctx, fulfillment.WorkflowID(r.OrderID), "", fulfillment.SignalCarrier, u)
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			return nil
		case errors.As(err, &nf):
			c.log.Warn("carrier report for an order with no running fulfillment", "order", r.OrderID, "shipment", r.ShipmentID, "event", r.Event)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		c.log.Warn("carrier relay: signal failed, retrying", "order", r.OrderID, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func readCheckpoint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// writeCheckpoint replaces the file atomically (write, fsync, rename).
func writeCheckpoint(file string, pos uint64) error {
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatUint(pos, 10) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
