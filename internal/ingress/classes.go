package ingress

import (
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// unserved explains why an Ingress that is not served is not, when that is probably a
// mistake: its class names no IngressClass at all (a typo such as "abl", or a class
// whose IngressClass was never created), or it has no class and no IngressClass is the
// default. An Ingress whose class is another controller's IngressClass is that
// controller's business and gets nothing, as the AWS controller leaves it alone.
func (cs classSet) unserved(ing *networkingv1.Ingress, file string) config.Problems {
	r := &reporter{file: file, object: ObjectName("Ingress", namespaceOf(ing.Namespace), ing.Name)}
	served := cs.names()
	list := strings.Join(served, ", ")
	class, at := "", field.NewPath("spec", "ingressClassName")
	if n := ing.Spec.IngressClassName; n != nil && *n != "" {
		class = *n
	} else if n := ing.Annotations[legacyClassAnnotation]; n != "" {
		class, at = n, annotationPath(legacyClassAnnotation)
	}
	switch {
	case class == "":
		r.warnf(at, "no class and no default IngressClass: not served; set spec.ingressClassName to a served class (%s)", list)
	case cs.others[class]:
	default:
		hint := ""
		if m := nearestOf(class, served); m != "" {
			hint = "; did you mean " + m + "?"
		}
		r.warnf(at, "class %q is not served and no IngressClass of that name exists: not served; served classes: %s (--ingress-class)%s", class, list, hint)
	}
	return r.problems
}

// names are the served class names, sorted.
func (cs classSet) names() []string {
	out := make([]string, 0, len(cs.served))
	for n := range cs.served {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
