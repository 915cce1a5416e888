// Package domain holds livecore's pure business core: money, the
// event-sourcing kernel and the aggregates. Nothing under domain/ does IO,
// reads the clock or draws random numbers, and it imports only the standard
// library and shopspring/decimal (TestDomainImports enforces it).
package domain
