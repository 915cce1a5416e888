package bnpl

import "go.temporal.io/sdk/worker"

// Register adds the schedule workflow and a's activities to w.
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflow(Schedule)
	w.RegisterActivity(a)
}
