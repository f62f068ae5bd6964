// Package envoyconfig reads an Envoy bootstrap file (the project's envoy.yaml) into the
// go-control-plane types, strictly (Load, Parse), and unpacks the parts Switchyard reads
// (Inspect, Config). The dev proxy serves what it reads; the offline checker
// (internal/testkit/envoycheck) runs Envoy's schema and start-up rules on the same model.
package envoyconfig

import (
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// Load reads an Envoy bootstrap in YAML (anchors and aliases allowed) or JSON and
// decodes it strictly: an unknown field, an unknown enum name or an "@type" that is not
// one of the types this package registers (see register.go) is an error. Load runs no
// validation rules; internal/testkit/envoycheck has those. Inspect unpacks the result.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Envoy config: %w", err)
	}
	bs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bs, nil
}

// Parse is Load for bytes already in memory.
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var bs bootstrapv3.Bootstrap
	// The zero UnmarshalOptions are the strict ones: no DiscardUnknown, and Any types
	// resolve only through the global registry. Positions in these errors are byte
	// offsets into the JSON form of the YAML, not YAML line numbers.
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &bs); err != nil {
		return nil, fmt.Errorf("not a valid Envoy v3 bootstrap (fix the named field or @type; "+
			"a type missing from internal/envoyconfig/register.go must be added there): %w", err)
	}
	return &bs, nil
}
