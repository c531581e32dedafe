package keyspace_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/riskengine/risk/features/keyspace"
)

// TestNoPrefixOfAnother: a scan of one prefix never reads another's keys.
func TestNoPrefixOfAnother(t *testing.T) {
	all := keyspace.All()
	for i, a := range all {
		if a.Key == "" || a.Owner == "" || a.What == "" {
			t.Errorf("entry %d is incomplete: %+v", i, a)
		}
		for j, b := range all {
			if i != j && strings.HasPrefix(b.Key, a.Key) {
				t.Errorf("%q (%s) is a prefix of %q (%s): a scan of the first reads the second's keys; pick another", a.Key, a.Owner, b.Key, b.Owner)
			}
		}
	}
}

// TestArchitectureDocMatches: the storage table of docs/architecture.md
// names exactly the registered prefixes and keys.
func TestArchitectureDocMatches(t *testing.T) {
	doc := filepath.Join("..", "..", "docs", "architecture.md")
	inDoc, err := docKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, e := range keyspace.All() {
		registered[e.Key] = true
		if !inDoc[e.Key] {
			t.Errorf("%s lacks %s; add this row to its storage table (and say what the keys hold):\n| `%s` | %s | %s |", doc, e.Key, e.Key, e.Owner, e.What)
		}
	}
	var extra []string
	for k := range inDoc {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		t.Errorf("%s lists %s, which keyspace.All does not: register it in features/keyspace/keyspace.go or remove the row", doc, k)
	}
}

// docKeys reads the first column of the table after "## Storage": every
// backquoted key, with its <placeholders> and \0 separators dropped.
func docKeys(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	code := regexp.MustCompile("`([^`]*)`")
	placeholder := regexp.MustCompile(`<[^>]*>|\\0`)
	keys := map[string]bool{}
	inSection, inTable := false, false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			inSection = strings.HasPrefix(line, "## Storage")
			inTable = false
		case inSection && strings.HasPrefix(line, "|"):
			cells := strings.Split(line, "|")
			if !inTable { // the header row
				inTable = true
				continue
			}
			for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
				for _, k := range strings.Fields(placeholder.ReplaceAllString(m[1], "")) {
					keys[k] = true
				}
			}
		case inTable && strings.TrimSpace(line) == "":
			inSection, inTable = false, false
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no storage table found after ## Storage", path)
	}
	return keys, nil
}

// TestKeysComeFromTheRegistry: no package declares a key prefix of its own
// (a `prefixX = "..."` or `keyX = "..."` string constant); it names the
// keyspace constant instead.
func TestKeysComeFromTheRegistry(t *testing.T) {
	root := filepath.Join("..", "..")
	decl := regexp.MustCompile(`\b((?:prefix|key)([A-Z]\w*))\s*=\s*("[^"]*")`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "keyspace") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		owner := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, root+string(filepath.Separator))))
		for i, line := range strings.Split(string(src), "\n") {
			if m := decl.FindStringSubmatch(line); m != nil {
				t.Errorf("%s:%d declares a Badger key of its own: %s\n"+
					"register it in features/keyspace/keyspace.go, a constant and an entry of All:\n"+
					"\t%s = %s\n\t{%s, %q, \"what the keys hold\"},\n"+
					"then write %s = keyspace.%s here, and add its row to docs/architecture.md",
					path, i+1, strings.TrimSpace(line), m[2], m[3], m[2], owner, m[1], m[2])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
