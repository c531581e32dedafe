package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// The start-up policy of a server: which feature definitions and which rule
// set go live, and which lists are seeded. main reads the files and calls
// these; the decisions are made here, next to the stores they touch.

// startupAuthor is the author of everything written at start.
const startupAuthor = "startup"

// DefinitionsStore is what LoadDefinitions needs of the feature store.
type DefinitionsStore interface {
	HasStoredDefinitions() bool
	SetDefinitions(ctx context.Context, defs []features.Definition) error
}

// LoadDefinitions applies the feature definitions file data. With data nil
// the stored definitions are kept, and a store that has none gets the
// bundled sample (first start).
func LoadDefinitions(ctx context.Context, store DefinitionsStore, data []byte) error {
	if data == nil {
		if store.HasStoredDefinitions() {
			return nil
		}
		data = features.Sample()
	}
	defs, err := features.ParseDefinitions(data)
	if err != nil {
		return err
	}
	return store.SetDefinitions(ctx, defs)
}

// SeedLists creates each seeded list that does not exist yet, with its
// items, noting source in each item's reason. A list that exists is left
// as it is: analysts manage it.
func SeedLists(lists *features.Lists, seeds []rules.ListSeed, source string) error {
	for _, l := range seeds {
		if _, err := lists.Get(l.Name); err == nil {
			continue
		}
		if _, err := lists.Put(features.List{Name: l.Name, Kind: l.Kind, Author: startupAuthor}); err != nil {
			return fmt.Errorf("seed list %q: %w", l.Name, err)
		}
		items := make([]features.Item, len(l.Items))
		for i, v := range l.Items {
			items[i] = features.Item{Value: v, Reason: "seeded from " + source, Author: startupAuthor}
		}
		if len(items) > 0 {
			if _, err := lists.AddItems(l.Name, items); err != nil {
				return fmt.Errorf("seed list %q: %w", l.Name, err)
			}
		}
	}
	return nil
}

// PublishIfChanged makes spec live. When it equals the latest published
// version (same canonical hash) that version goes live again and nothing
// is stored; otherwise spec is published as a new version with comment.
// It reports whether a version was published.
//
// Nodes of a cluster starting together with the same file race to publish
// it: the loser's publish conflicts, and it looks again, finding the
// winner's version equal to its spec.
func (v *Versions) PublishIfChanged(spec rules.Spec, env rules.Env, author, comment string, live func(*rules.Set)) (Version, bool, error) {
	ver, published, err := v.publishIfChanged(spec, env, author, comment, live)
	if errors.Is(err, engine.ErrConflict) {
		ver, published, err = v.publishIfChanged(spec, env, author, comment, live)
	}
	return ver, published, err
}

func (v *Versions) publishIfChanged(spec rules.Spec, env rules.Env, author, comment string, live func(*rules.Set)) (Version, bool, error) {
	latest, err := v.Latest()
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return Version{}, false, err
	}
	canonical := spec.Canonical()
	if latest.Number > 0 && latest.Hash == canonical.Hash() {
		set, err := rules.Compile(latest.Spec, env, latest.Number)
		if err != nil {
			return Version{}, false, fmt.Errorf("compile rule set version %d: %w", latest.Number, err)
		}
		if live != nil {
			live(set)
		}
		return latest, false, nil
	}
	// Over the version compared with only: a node that published the same
	// file meanwhile makes this a conflict, and the caller looks again.
	ver, err := v.publish(spec, env, author, comment, live, latest.Number)
	return ver, err == nil, err
}

// LoadRules makes a rule set live at start. With data nil it is the latest
// published version, or the bundled sample when none was ever published.
// Otherwise data is a rule set file from source: its lists are seeded
// (SeedLists) and its spec published when it differs from the latest
// version (PublishIfChanged).
func LoadRules(versions *Versions, lists *features.Lists, env rules.Env, data []byte, source string, live func(*rules.Set)) error {
	if data == nil {
		latest, err := versions.Latest()
		switch {
		case err == nil:
			set, err := rules.Compile(latest.Spec, env, latest.Number)
			if err != nil {
				return fmt.Errorf("compile live rule set version %d: %w", latest.Number, err)
			}
			live(set)
			return nil
		case !errors.Is(err, engine.ErrNotFound):
			return err
		}
		data, source = rules.Sample(), "bundled sample"
	}
	f, err := rules.ParseFile(data)
	if err != nil {
		return err
	}
	if err := SeedLists(lists, f.Lists, source); err != nil {
		return err
	}
	_, _, err = versions.PublishIfChanged(f.Spec, env, startupAuthor, "loaded from "+source, live)
	return err
}
