package envoycheck

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"

	"switchyard/internal/envoyconfig"
)

// Envoy's own limits for google.protobuf.Duration (source/common/protobuf/utility.cc):
// negative parts are "Expected positive duration", larger ones are out of range.
const (
	maxDurationSeconds = 315576000000
	maxDurationNanos   = 999999999
)

// ValidateDeep applies Envoy's API validation rules to m and to everything inside it,
// and returns every violation.
//
// The generated ValidateAll stops at google.protobuf.Any: a typed_config (the HTTP
// connection manager, its routes, every filter) or a typed_per_filter_config entry is
// never looked into. ValidateDeep walks the whole message tree, unpacks every Any
// through the global type registry, and runs ValidateAll on each unpacked message (which
// covers that message's plain sub-messages), so each rule is checked exactly once.
// It also reports what Envoy rejects outside the generated rules (negative or
// out-of-range durations), TypedStructs (their contents cannot be type-checked) and
// fields or enum values marked deprecated.
func ValidateDeep(m proto.Message) []Problem {
	var ps problems
	validateAll(m, "", &ps)
	walk(m.ProtoReflect(), "", &ps)
	return ps
}

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

// multiError is protoc-gen-validate's list of violations.
type multiError interface{ AllErrors() []error }

func validateAll(m proto.Message, path string, ps *problems) {
	v, ok := m.(validator)
	if !ok {
		return // well-known types such as StringValue carry no rules
	}
	err := v.ValidateAll()
	if err == nil {
		return
	}
	errs := []error{err}
	if me, ok := err.(multiError); ok {
		errs = me.AllErrors()
	}
	where := path
	if where == "" {
		where = string(m.ProtoReflect().Descriptor().FullName())
	}
	for _, e := range errs {
		ps.add(RuleSchema, where, "%v", e)
	}
}

func walk(m protoreflect.Message, path string, ps *problems) {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Any":
		walkAny(m, path, ps)
		return
	case "google.protobuf.Duration":
		checkDuration(m, path, ps)
		return
	case "xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct":
		ps.add(RuleTypedStruct, path, "a TypedStruct's contents cannot be checked; "+
			"write the real \"@type\" and its fields instead")
		return
	}
	// Range visits only populated fields, in field-number order.
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		checkDeprecated(fd, v, p, ps)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if fd.Message() != nil {
					walk(l.Get(i).Message(), fmt.Sprintf("%s[%s]", p, elementName(l.Get(i).Message(), i)), ps)
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			// Sorted keys, so the same config gives the same problems in the same order.
			var keys []protoreflect.MapKey
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				walk(v.Map().Get(k).Message(), fmt.Sprintf("%s[%s]", p, k.String()), ps)
			}
		case fd.Message() != nil:
			walk(v.Message(), p, ps)
		}
		return true
	})
}

func walkAny(m protoreflect.Message, path string, ps *problems) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		a = new(anypb.Any)
		proto.Merge(a, m.Interface())
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		ps.add(RuleUnpack, path, "cannot unpack %q: %v (register its package in internal/envoyconfig/register.go, or fix the @type)",
			a.GetTypeUrl(), err)
		return
	}
	p := fmt.Sprintf("%s(%s)", path, envoyconfig.ShortName(inner.ProtoReflect().Descriptor().FullName()))
	validateAll(inner, p, ps)
	walk(inner.ProtoReflect(), p, ps)
}

func checkDuration(m protoreflect.Message, path string, ps *problems) {
	fields := m.Descriptor().Fields()
	secs := m.Get(fields.ByName("seconds")).Int()
	nanos := m.Get(fields.ByName("nanos")).Int()
	switch {
	case secs < 0 || nanos < 0:
		ps.add(RuleDuration, path, "negative duration (%ds %dns): Envoy refuses it (\"Expected positive duration\"); use 0s or more", secs, nanos)
	case secs > maxDurationSeconds || nanos > maxDurationNanos:
		ps.add(RuleDuration, path, "duration out of range (%ds %dns): Envoy refuses it", secs, nanos)
	}
}

func checkDeprecated(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, ps *problems) {
	if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
		ps.add(RuleDeprecated, path, "%s is deprecated in Envoy's API; use its replacement (see the field's documentation)", fd.FullName())
	}
	if fd.Kind() != protoreflect.EnumKind || fd.IsList() || fd.IsMap() {
		return
	}
	ev := fd.Enum().Values().ByNumber(v.Enum())
	if ev == nil {
		return
	}
	if opts, ok := ev.Options().(*descriptorpb.EnumValueOptions); ok && opts.GetDeprecated() {
		ps.add(RuleDeprecated, path, "enum value %s is deprecated in Envoy's API", ev.FullName())
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// elementName names a list element by its "name" field when it has one (listeners,
// clusters, filters, virtual hosts), else by its index.
func elementName(m protoreflect.Message, i int) string {
	name := ""
	if fd := m.Descriptor().Fields().ByName("name"); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
		name = m.Get(fd).String()
	}
	return envoyconfig.ElementLabel(name, i)
}
