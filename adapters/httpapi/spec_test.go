package httpapi

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

func TestSpecIsValidOpenAPI31(t *testing.T) {
	doc, err := LoadSpec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	ops := 0
	for _, item := range doc.Paths.Map() {
		ops += len(item.Operations())
	}
	t.Logf("spec: OpenAPI %s, %d paths, %d operations, %d schemas", doc.OpenAPI, doc.Paths.Len(), ops, len(doc.Components.Schemas))

	b, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["ProblemCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var codes []string
	for _, c := range Codes() {
		codes = append(codes, string(c))
	}
	slices.Sort(enum)
	slices.Sort(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("ProblemCode enum %v != Codes() %v", enum, codes)
	}
}
