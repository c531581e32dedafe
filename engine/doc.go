// Package engine is the domain of the risk engine: what a payment is, what a
// decision is, and the path a payment takes from request to recorded decision.
//
// The engine imports only the standard library. It declares the small
// interfaces it needs (a rule set, a feature source, a decision store, a
// limiter) and the packages rules and features implement them; main wires
// them together.
package engine
