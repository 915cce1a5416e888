//go:build !linux

package projections

// pace does nothing where there is no boot ID (not Linux): Unsynced opens
// synced there, and startUnsynced never starts it.
func (g *unsyncedGuard) pace() { <-g.stop }
