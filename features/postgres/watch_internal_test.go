package postgres

import (
	"fmt"
	"slices"
	"testing"

	"github.com/riskengine/risk/features/keyspace"
)

func TestChangePrefix(t *testing.T) {
	r := newRegistry()
	tests := []struct {
		key, want string
	}{
		{keyspace.ListItem + "list\x00item", keyspace.ListItem},
		{keyspace.ReviewItem + "42", keyspace.ReviewItem}, // not "rq/"
		{keyspace.LimitsPolicy, keyspace.LimitsPolicy},
		{keyspace.DraftMeta, keyspace.DraftMeta},
		{"m/unregistered", "m/"},
		{"zz/a/b", "zz/"},
		{"noslash", "noslash"},
		{"", ""},
		{"\xff\xff/x", ""}, // not UTF-8
		{"a,b/x", ""},      // would split the payload
		{"a\x00b/x", ""},
	}
	for _, tt := range tests {
		if got := r.prefix([]byte(tt.key)); got != tt.want {
			t.Errorf("prefix(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []string
		want []string
	}{
		{"sorted", []string{"lp/policy", "ak/", "li/"}, []string{"ak/", "li/", "lp/policy"}},
		{"one", []string{"au/"}, []string{"au/"}},
		{"unprintable means everything", []string{"au/", ""}, nil},
		{"too long for NOTIFY means everything", manyPrefixes(1000), nil},
	} {
		set := map[string]struct{}{}
		for _, p := range tt.in {
			set[p] = struct{}{}
		}
		if got := parsePayload(changePayload(set)); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("%s: parsePayload(changePayload(%q)) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func manyPrefixes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("unregistered-%04d", i)
	}
	return out
}
