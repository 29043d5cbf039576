// Avviso's build of FerretDB replaces this one file of FerretDB 1.24.2 (internal/util/resource) with
// the same API doing nothing; tools/bootstrap.sh copies it over the vendored module before building.
//
// Why: FerretDB tracks every document iterator it creates (one per document converted, read or
// written) in a pprof profile with its caller's stack, and sets a finalizer that panics if one is
// never closed: a leak detector for FerretDB's own tests. In a release build it only costs: a CPU
// profile of 4,000 delivery records read (docs/performance-history.md, ninth session) spent 10.7% of
// FerretDB's time in it (runtime.Callers for the stack), and the read of the restoration's outage
// notices took 10% less without it. Nothing else in FerretDB reads those profiles.
//
// Go does not let a build overlay replace files of the module cache, and an internal package
// cannot be replaced from outside its module: hence a vendored copy with this file in place.
package resource

// Token is the field by which FerretDB's tracked objects are tracked; kept so that its code builds unchanged.
type Token byte

// NewToken returns a new token.
func NewToken() *Token { return new(Token) }

// Track does nothing (see the top of this file).
func Track(obj any, token *Token) {}

// Untrack does nothing (see the top of this file).
func Untrack(obj any, token *Token) {}
