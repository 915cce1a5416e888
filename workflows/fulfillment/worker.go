package fulfillment

import "go.temporal.io/sdk/worker"

// Register adds the fulfillment workflow and a's activities to w.
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflow(Fulfill)
	w.RegisterActivity(a)
}
