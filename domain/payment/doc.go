// Package payment is the payment aggregate: one authorization and what
// happens to it, and the port to payment-service providers (provider.go).
//
// # Rules
//
//   - Authorize records a hold the provider granted; Decline records a
//     refusal (with a DeclineReason). A payment is decided once: a declined
//     payment is final, and a new attempt is a new payment.
//   - An authorization is capturable until ExpiresAt: 7 days for cards
//     (CardAuthorizationValidity), 28 days for BNPL
//     (BNPLAuthorizationValidity). At or after it, Capture and Void fail
//     with ErrAuthorizationExpired whether or not Expire was recorded.
//   - Capture may run several times (once per shipment), each under its own
//     capture ID, while the sum stays within the authorized amount.
//   - Void releases the uncaptured remainder and closes the hold; so does
//     Expire, once the expiry has passed. Captures made before stay.
//   - Refund returns captured money, several times, each under a refund ID,
//     in any status after authorization. Refundable is captured minus
//     refunded, minus the amount under open or lost chargebacks: a disputed
//     amount cannot also be refunded.
//   - Chargebacks are opened (up to the refundable amount) and then won
//     (the amount is the merchant's again) or lost (gone for good).
//   - Invariant, after any history: refunded + charged back + disputed <=
//     captured; captured + released <= authorized. In particular
//     refunded <= captured <= authorized.
//
// # Idempotency
//
// Commands are safe to retry after their events were stored: a capture,
// refund or chargeback ID seen before with the same data yields no events
// and no error (a retry); with other data it is ErrIDReused. Authorize and
// Decline repeated with the same data, Void of a voided payment, Expire of a
// closed hold and resolving a chargeback the same way again also yield no
// events. Conflicting commands get an error.
//
// # Events and state
//
// Decisions are methods that return events (pointers) and never change the
// Payment; Apply folds events into it. Event type names are the Type...
// constants; Register adds them all to a registry. Nothing here reads the
// clock: every command takes now.
package payment
