package admin

import (
	"slices"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/riskengine/risk/rules"
)

// refs are the features and lists one expression names.
type refs struct {
	features []string
	lists    []string
}

// references parses src and returns the features it reads
// (features.<name> or features["<name>"]) and the lists it names as a
// literal first argument of in_list. An expression that does not parse
// names nothing.
func references(src string) refs {
	tree, err := parser.Parse(src)
	if err != nil {
		return refs{}
	}
	v := &refVisitor{}
	ast.Walk(&tree.Node, v)
	return v.refs
}

type refVisitor struct{ refs }

func (v *refVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		root, ok := n.Node.(*ast.IdentifierNode)
		prop, isStr := n.Property.(*ast.StringNode)
		if ok && isStr && root.Value == "features" && !slices.Contains(v.features, prop.Value) {
			v.features = append(v.features, prop.Value)
		}
	case *ast.CallNode:
		callee, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || callee.Value != "in_list" || len(n.Arguments) == 0 {
			return
		}
		if name, ok := n.Arguments[0].(*ast.StringNode); ok && !slices.Contains(v.lists, name.Value) {
			v.lists = append(v.lists, name.Value)
		}
	}
}

// rulesUsingFeature returns the ids of the rules of spec that read the
// feature, in spec order.
func rulesUsingFeature(spec rules.Spec, feature string) []string {
	var ids []string
	for _, r := range spec.Rules {
		if slices.Contains(references(r.Expression).features, feature) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// rulesUsingList returns the ids of the rules of spec that name the list.
func rulesUsingList(spec rules.Spec, list string) []string {
	var ids []string
	for _, r := range spec.Rules {
		if slices.Contains(references(r.Expression).lists, list) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// listsUsed returns the lists spec names, in order of first use.
func listsUsed(spec rules.Spec) []string {
	var names []string
	for _, r := range spec.Rules {
		for _, l := range references(r.Expression).lists {
			if !slices.Contains(names, l) {
				names = append(names, l)
			}
		}
	}
	return names
}
