package ingress

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Annotations that name routing rules: ${name} is a path's backend.service.name.
const (
	// AnnotationActionsPrefix + name is the AWS Load Balancer Controller's custom action
	// (forward to weighted Services, or a fixed response) for the paths whose backend is
	// service name ${name} with port name use-annotation.
	AnnotationActionsPrefix = ALBAnnotationPrefix + "actions."
	// AnnotationConditionsPrefix + name adds the ALB's conditions (http-header,
	// path-pattern, host-header, source-ip, query-string, http-request-method) to the
	// paths whose backend service name is ${name}.
	AnnotationConditionsPrefix = ALBAnnotationPrefix + "conditions."
	// AnnotationMilvusConditionsPrefix + name adds conditions on what the call's first
	// message says (database, collection, operation, consistency_level), in the same JSON
	// style, to the same paths.
	AnnotationMilvusConditionsPrefix = "milvus-lb.io/conditions."
)

// albCondition is one element of a conditions annotation, as the AWS controller reads it
// (pkg/ingress/config_types.go RuleCondition); field names match without case, as
// encoding/json matches them, so the docs' sourceIpConfig and the code's sourceIPConfig
// both work. milvus-lb's fields use the same shape: {"field":"database",
// "databaseConfig":{"values":[...]}}.
type albCondition struct {
	Field                   string            `json:"field"`
	HostHeaderConfig        *valuesConfig     `json:"hostHeaderConfig"`
	HTTPHeaderConfig        *httpHeaderConfig `json:"httpHeaderConfig"`
	HTTPRequestMethodConfig *valuesConfig     `json:"httpRequestMethodConfig"`
	PathPatternConfig       *valuesConfig     `json:"pathPatternConfig"`
	QueryStringConfig       *queryConfig      `json:"queryStringConfig"`
	SourceIPConfig          *valuesConfig     `json:"sourceIPConfig"`
	DatabaseConfig          *valuesConfig     `json:"databaseConfig"`
	CollectionConfig        *valuesConfig     `json:"collectionConfig"`
	OperationConfig         *valuesConfig     `json:"operationConfig"`
	ConsistencyLevelConfig  *valuesConfig     `json:"consistencyLevelConfig"`
}

type valuesConfig struct {
	Values []string `json:"values"`
}

type httpHeaderConfig struct {
	HTTPHeaderName string   `json:"httpHeaderName"`
	Values         []string `json:"values"`
}

type queryConfig struct {
	Values []struct {
		Key   *string `json:"key"`
		Value string  `json:"value"`
	} `json:"values"`
}

// conditionKind is what one field of a conditions annotation accepts.
type conditionKind struct {
	field    config.ConditionField
	config   string                              // the name of its *Config member
	values   func(c *albCondition) *valuesConfig // nil for http-header and query-string
	validate func(v string) string               // why v is invalid, or ""
}

var albKinds = []conditionKind{
	{field: config.FieldHostHeader, config: "hostHeaderConfig", values: func(c *albCondition) *valuesConfig { return c.HostHeaderConfig }, validate: validHostPattern},
	{field: config.FieldPathPattern, config: "pathPatternConfig", values: func(c *albCondition) *valuesConfig { return c.PathPatternConfig }, validate: validPathPattern},
	{field: config.FieldHTTPHeader, config: "httpHeaderConfig"},
	{field: config.FieldMethod, config: "httpRequestMethodConfig", values: func(c *albCondition) *valuesConfig { return c.HTTPRequestMethodConfig }, validate: validMethod},
	{field: config.FieldQueryString, config: "queryStringConfig"},
	{field: config.FieldSourceIP, config: "sourceIPConfig", values: func(c *albCondition) *valuesConfig { return c.SourceIPConfig }, validate: validCIDR},
}

var milvusKinds = []conditionKind{
	{field: config.FieldDatabase, config: "databaseConfig", values: func(c *albCondition) *valuesConfig { return c.DatabaseConfig }, validate: validName},
	{field: config.FieldCollection, config: "collectionConfig", values: func(c *albCondition) *valuesConfig { return c.CollectionConfig }, validate: validName},
	{field: config.FieldOperation, config: "operationConfig", values: func(c *albCondition) *valuesConfig { return c.OperationConfig }, validate: validOperation},
	{field: config.FieldConsistency, config: "consistencyLevelConfig", values: func(c *albCondition) *valuesConfig { return c.ConsistencyLevelConfig }, validate: validLevel},
}

// parseConditions reads one conditions annotation (name is the whole annotation key) with
// the fields of kinds. It reports every malformed element against the annotation, with
// the element's index and JSON field, and returns ok false if there was any.
func parseConditions(a annotations, name string, kinds []conditionKind) (out []config.Condition, ok bool) {
	v, _ := a.get(name)
	var list []albCondition
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("got a JSON %s", te.Value)
			if te.Field != "" {
				err = fmt.Errorf("%s is a JSON %s", te.Field, te.Value)
			}
		}
		a.errorf(name, `invalid conditions: want a JSON list such as [{"field":%q,%q:{...}}]: %v`, kinds[0].field, kinds[0].config, err)
		return nil, false
	}
	if len(list) == 0 {
		a.errorf(name, "no conditions in the list")
		return nil, false
	}
	ok = true
	for i := range list {
		c, why := condition(&list[i], kinds)
		if why != "" {
			a.errorf(name, "[%d]%s", i, why)
			ok = false
			continue
		}
		out = append(out, c)
	}
	return out, ok
}

// condition checks one element; why starts with the JSON field it is about.
func condition(c *albCondition, kinds []conditionKind) (config.Condition, string) {
	var k *conditionKind
	names := make([]string, 0, len(kinds))
	for i := range kinds {
		names = append(names, string(kinds[i].field))
		if string(kinds[i].field) == c.Field {
			k = &kinds[i]
		}
	}
	if k == nil {
		why := fmt.Sprintf(".field: unknown field %q: must be one of %s", c.Field, strings.Join(names, ", "))
		for _, other := range [2]struct {
			kinds  []conditionKind
			prefix string
		}{{albKinds, AnnotationConditionsPrefix}, {milvusKinds, AnnotationMilvusConditionsPrefix}} {
			for _, o := range other.kinds {
				if string(o.field) == c.Field {
					why += fmt.Sprintf(" (%s goes in %s${name})", c.Field, other.prefix)
				}
			}
		}
		return config.Condition{}, why
	}
	out := config.Condition{Field: k.field}
	switch k.field {
	case config.FieldHTTPHeader:
		return httpHeaderCondition(c.HTTPHeaderConfig)
	case config.FieldQueryString:
		return queryCondition(c.QueryStringConfig)
	}
	vc := k.values(c)
	if vc == nil {
		return out, fmt.Sprintf(": field %s needs %s", k.field, k.config)
	}
	if len(vc.Values) == 0 {
		return out, fmt.Sprintf(".%s.values: empty; give at least one value", k.config)
	}
	for j, v := range vc.Values {
		if why := k.validate(v); why != "" {
			return out, fmt.Sprintf(".%s.values[%d]: %q: %s", k.config, j, v, why)
		}
		if k.field == config.FieldHostHeader {
			v = strings.ToLower(v)
		}
		out.Values = append(out.Values, v)
	}
	return out, ""
}

func httpHeaderCondition(h *httpHeaderConfig) (config.Condition, string) {
	out := config.Condition{Field: config.FieldHTTPHeader}
	switch {
	case h == nil:
		return out, ": field http-header needs httpHeaderConfig"
	case !validToken(h.HTTPHeaderName):
		return out, fmt.Sprintf(".httpHeaderConfig.httpHeaderName: %q is not a header name (letters, digits and !#$%%&'*+-.^_`|~)", h.HTTPHeaderName)
	case len(h.Values) == 0:
		return out, ".httpHeaderConfig.values: empty; give at least one value"
	}
	out.Name = strings.ToLower(h.HTTPHeaderName)
	for j, v := range h.Values {
		if v == "" || len(v) > 128 {
			return out, fmt.Sprintf(".httpHeaderConfig.values[%d]: must be 1 to 128 characters", j)
		}
		out.Values = append(out.Values, v)
	}
	return out, ""
}

func queryCondition(q *queryConfig) (config.Condition, string) {
	out := config.Condition{Field: config.FieldQueryString}
	if q == nil {
		return out, ": field query-string needs queryStringConfig"
	}
	if len(q.Values) == 0 {
		return out, ".queryStringConfig.values: empty; give at least one key/value pair"
	}
	for j, kv := range q.Values {
		if kv.Value == "" {
			return out, fmt.Sprintf(".queryStringConfig.values[%d].value: required", j)
		}
		qv := config.QueryValue{Value: kv.Value}
		if kv.Key != nil {
			qv.Key = *kv.Key
		}
		out.Query = append(out.Query, qv)
	}
	return out, ""
}

// validToken: an HTTP field name (RFC 9110 §5.1), as the ALB accepts them.
func validToken(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validHostPattern(v string) string {
	if v == "" || len(v) > 128 {
		return "must be 1 to 128 characters"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.*?", c) >= 0) {
			return "a host name has only letters, digits, '-', '.' and the wildcards * and ?"
		}
	}
	return ""
}

func validPathPattern(v string) string {
	if v == "" || len(v) > 128 {
		return "must be 1 to 128 characters"
	}
	if v[0] != '/' && v[0] != '*' {
		return "a path pattern starts with / (or *)"
	}
	return ""
}

func validMethod(v string) string {
	if v == "" || len(v) > 40 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != "" {
		return "a method is 1 to 40 upper-case letters, '_' and '-' (the ALB compares it with case)"
	}
	return ""
}

func validCIDR(v string) string {
	if _, err := netip.ParsePrefix(v); err != nil {
		return "want an address block in CIDR form, such as 10.0.0.0/8 or 2001:db8::/32"
	}
	return ""
}

func validName(v string) string {
	if v == "" || len(v) > 255 {
		return "must be 1 to 255 characters"
	}
	return ""
}

func validOperation(v string) string {
	if _, ok := milvus.ParseClass(v); !ok {
		return "must be one of read, write, ddl, admin"
	}
	return ""
}

// consistencyLevels are the levels a request can ask for, as commonpb.ConsistencyLevel
// names them.
var consistencyLevels = []string{"Strong", "Session", "Bounded", "Eventually", "Customized"}

func validLevel(v string) string {
	for _, l := range consistencyLevels {
		if v == l {
			return ""
		}
	}
	return "must be one of " + strings.Join(consistencyLevels, ", ")
}
