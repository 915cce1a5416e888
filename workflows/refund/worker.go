package refund

import "go.temporal.io/sdk/worker"

// Register adds the refund workflow and a's activities to w.
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflow(Refund)
	w.RegisterActivity(a)
}
