package checkout

import "go.temporal.io/sdk/worker"

// Register adds the checkout workflow and a's activities to w.
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflow(Checkout)
	w.RegisterActivity(a)
}
