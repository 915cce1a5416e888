// Package journal is livecore's finance journal: a projection that derives
// balanced double-entry postings from the event log (cards, BNPL, revenue,
// refunds, returns, late fees, write-offs, chargebacks), and the queries
// finance runs on it: the trial balance per currency, balances as of any
// time or position, and postings for export and reconciliation.
//
// The chart of accounts and the posting rules are in Accounts and Book;
// docs/audit.md explains them for the finance team. Postings carry the
// recorded-at time and the $all position of the event that caused them,
// so "as of" is a filter, never a recomputation.
package journal

import "fmt"

// AccountType is an account's class in the balance sheet or income
// statement. Closed set.
type AccountType struct{ name string }

// The account types.
var (
	Asset     = AccountType{"asset"}
	Liability = AccountType{"liability"}
	Revenue   = AccountType{"revenue"} // contra-revenue accounts too
	Expense   = AccountType{"expense"}
)

func (t AccountType) String() string { return t.name }

// Account is one account of the chart. Accounts cannot be forged: use the
// package variables or ParseAccount.
type Account struct {
	code, name string
	typ        AccountType
}

// Code is the account number ("1100").
func (a Account) Code() string { return a.code }

// Name is the account's title.
func (a Account) Name() string { return a.name }

// Type is the account's class.
func (a Account) Type() AccountType { return a.typ }

func (a Account) String() string { return a.code + " " + a.name }

// The chart of accounts. Balances are debit minus credit; an asset or
// expense normally has a debit balance, a liability or revenue a credit
// balance (contra-revenue accounts a debit one).
var (
	// CardClearing: captured card money the payment provider owes us
	// (captures less refunds and disputed amounts).
	CardClearing = Account{"1100", "Card clearing (due from PSP)", Asset}
	// BNPLPrincipal: principal customers owe on BNPL plans.
	BNPLPrincipal = Account{"1200", "BNPL receivable: principal", Asset}
	// BNPLFees: late fees assessed and not yet paid or waived.
	BNPLFees = Account{"1220", "BNPL receivable: late fees", Asset}
	// BNPLCollections: money collected from BNPL customers (less money
	// returned to them), held by the provider until settled.
	BNPLCollections = Account{"1250", "BNPL collections clearing", Asset}
	// OrderReceivable: each order's contract balance, netted per order
	// (as ASC 606 presents a contract): debit when goods were delivered
	// before being paid for, credit when paid before delivery (a
	// customer deposit). Zero for an order paid, shipped and settled.
	OrderReceivable = Account{"1300", "Order receivable / customer deposits (net)", Asset}
	// DisputedFunds: card money the network holds back during a dispute.
	DisputedFunds = Account{"1400", "Funds held in card disputes", Asset}
	// BNPLFunding: what the BNPL lender owes the merchant for originated
	// plans, less what it funded through captures: zero per order once
	// a plan's origination and its payment captures and refunds agree.
	BNPLFunding = Account{"2150", "BNPL funding clearing", Liability}
	// SalesTax: tax collected on delivered goods, owed to authorities.
	SalesTax = Account{"2300", "Sales tax payable", Liability}
	// Suspense: differences the events do not explain (amounts that do
	// not add up). Must stay zero; any balance is investigated.
	Suspense = Account{"2900", "Suspense", Liability}
	// Revenue: gross sales of delivered goods, at list price.
	SalesRevenue = Account{"4000", "Sales revenue", Revenue}
	// SalesDiscounts: the order discounts of delivered goods (contra).
	SalesDiscounts = Account{"4010", "Sales discounts", Revenue}
	// SalesReturns: gross value of goods returned (contra).
	SalesReturns = Account{"4100", "Sales returns", Revenue}
	// InterestIncome: BNPL interest, recognised when collected.
	InterestIncome = Account{"4200", "BNPL interest income", Revenue}
	// LateFeeIncome: BNPL late fees, recognised when assessed.
	LateFeeIncome = Account{"4300", "Late-fee income", Revenue}
	// ChargebackLosses: disputes lost.
	ChargebackLosses = Account{"6100", "Chargeback losses", Expense}
	// BadDebt: BNPL principal and fees written off.
	BadDebt = Account{"6200", "Bad debt expense (BNPL write-offs)", Expense}
)

// Accounts is the chart of accounts in code order.
var Accounts = []Account{
	CardClearing, BNPLPrincipal, BNPLFees, BNPLCollections, OrderReceivable, DisputedFunds,
	BNPLFunding, SalesTax, Suspense,
	SalesRevenue, SalesDiscounts, SalesReturns, InterestIncome, LateFeeIncome,
	ChargebackLosses, BadDebt,
}

// ParseAccount returns the account with code.
func ParseAccount(code string) (Account, error) {
	for _, a := range Accounts {
		if a.code == code {
			return a, nil
		}
	}
	return Account{}, fmt.Errorf("journal: unknown account %q", code)
}
