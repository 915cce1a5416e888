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

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/domain/event"
	"github.com/livecore/livecore/internal/durable"
	"github.com/livecore/livecore/workflows/bnpl"
	"github.com/livecore/livecore/workflows/fulfillment"
)

// carrierRelay hands the requests the API records in the log to the sagas
// that act on them: shipment reports (shipment.carrier_reported) to the
// order's fulfillment saga as a carrier signal, payoff requests
// (plan.payoff_requested) to the plan's schedule as a payoff signal. It follows $all from a checkpoint file, like the saga
// dispatcher: a crash re-delivers the reports after the checkpoint, which
// the saga ignores for a shipment already past that state. A report for an
// order whose saga no longer runs is logged and skipped.
type carrierRelay struct {
	store      event.Subscriber
	filter     func(event.Envelope) bool // nil: every event
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
			if e.Type != httpapi.TypeCarrierReported && e.Type != httpapi.TypePayoffRequested || c.filter != nil && !c.filter(e) {
				continue
			}
			ev, err := c.reg.DecodeEnvelope(e)
			if err != nil {
				return fmt.Errorf("carrier relay: position %d: %w", e.Position, err)
			}
			switch ev := ev.(type) {
			case *httpapi.CarrierReported:
				u := fulfillment.CarrierUpdate{ShipmentID: ev.ShipmentID, Event: fulfillment.CarrierEvent(ev.Event), Carrier: ev.Carrier, TrackingNumber: ev.TrackingNumber, Reason: ev.Reason}
				err = c.signal(ctx, fulfillment.WorkflowID(ev.OrderID), fulfillment.SignalCarrier, u)
			case *httpapi.PayoffRequested:
				err = c.signal(ctx, bnpl.WorkflowID(ev.PlanID), bnpl.SignalPayoff, bnpl.PayoffRequest{RequestID: ev.RequestID})
			}
			if err != nil {
				return err
			}
		}
		return writeCheckpoint(c.checkpoint, batch[len(batch)-1].Position)
	})
}

func (c *carrierRelay) signal(ctx context.Context, workflowID, name string, arg any) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := c.client.SignalWorkflow(ctx, workflowID, "", name, arg)
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			return nil
		case errors.As(err, &nf):
			c.log.Warn("request relay: no running workflow for a request", "workflow", workflowID, "signal", name)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		c.log.Warn("request relay: signal failed, retrying", "workflow", workflowID, "err", err)
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

// writeCheckpoint replaces the file durably (write, fsync, rename, fsync
// the directory).
func writeCheckpoint(file string, pos uint64) error {
	return durable.WriteFile(file, []byte(strconv.FormatUint(pos, 10)+"\n"))
}
