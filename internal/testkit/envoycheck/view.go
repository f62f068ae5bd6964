package envoycheck

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"switchyard/internal/envoyconfig"
)

// view is the model the rules look at: the bootstrap as envoyconfig.Inspect unpacks it
// for the dev proxy too.
type view struct{ *envoyconfig.Config }

// unpack returns the message inside a, or nil (a fault reported as RuleUnpack) when it
// cannot.
func (v *view) unpack(a *anypb.Any, path string) proto.Message { return v.Unpack(a, path) }

// faults are the typed_configs that did not unpack, as problems.
func (v *view) faults() problems {
	var ps problems
	for _, f := range v.Faults {
		ps.add(RuleUnpack, f.Path, "cannot unpack %q: %v", f.TypeURL, f.Err)
	}
	return ps
}
