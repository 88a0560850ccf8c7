package ingress

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// albAction is an actions annotation as the AWS controller reads it
// (pkg/ingress/config_types.go Action).
type albAction struct {
	Type                string          `json:"type"`
	TargetGroupARN      *string         `json:"targetGroupARN"`
	FixedResponseConfig *fixedConfig    `json:"fixedResponseConfig"`
	RedirectConfig      json.RawMessage `json:"redirectConfig"`
	ForwardConfig       *forwardConfig  `json:"forwardConfig"`
}

type fixedConfig struct {
	ContentType *string `json:"contentType"`
	MessageBody *string `json:"messageBody"`
	StatusCode  string  `json:"statusCode"`
}

type forwardConfig struct {
	TargetGroups                []targetGroup `json:"targetGroups"`
	TargetGroupStickinessConfig *struct {
		Enabled *bool `json:"enabled"`
	} `json:"targetGroupStickinessConfig"`
}

type targetGroup struct {
	TargetGroupARN *string             `json:"targetGroupARN"`
	ServiceName    *string             `json:"serviceName"`
	ServicePort    *intstr.IntOrString `json:"servicePort"`
	Weight         *int64              `json:"weight"`
}

// action is a parsed actions annotation with its Services resolved to backends.
type action struct {
	forward  []config.WeightedBackend // the weights as written (0 allowed)
	backends []*config.Backend
	fixed    *config.FixedResponse
}

// fixedContentTypes are the content types the ALB allows in a fixed response.
var fixedContentTypes = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}

// readAction parses the actions annotation name and resolves its Services in namespace ns
// with the Ingress's target group settings s; nil after reporting an error.
func (x *index) readAction(a annotations, name, ns string, s backendSettings) *action {
	v, _ := a.get(name)
	var act albAction
	if err := json.Unmarshal([]byte(v), &act); err != nil {
		a.errorf(name, `invalid action: want JSON such as {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"milvus-blue","servicePort":19530,"weight":90}]}}: %v`, err)
		return nil
	}
	switch act.Type {
	case "forward":
		return x.forwardAction(a, name, ns, s, &act)
	case "fixed-response":
		return fixedAction(a, name, act.FixedResponseConfig)
	case "redirect":
		a.errorf(name, "type redirect is not supported: gRPC clients do not follow redirects; use forward or fixed-response")
	default:
		a.errorf(name, "type: unknown action type %q: must be forward or fixed-response", act.Type)
	}
	return nil
}

func fixedAction(a annotations, name string, fc *fixedConfig) *action {
	if fc == nil {
		a.errorf(name, "type fixed-response needs fixedResponseConfig")
		return nil
	}
	code, err := strconv.Atoi(fc.StatusCode)
	if err != nil || !(200 <= code && code <= 299 || 400 <= code && code <= 599) {
		a.errorf(name, "fixedResponseConfig.statusCode: %q: must be a 2XX, 4XX or 5XX status code, as a string", fc.StatusCode)
		return nil
	}
	out := &config.FixedResponse{StatusCode: code}
	if fc.ContentType != nil {
		if !slices.Contains(fixedContentTypes, *fc.ContentType) {
			a.errorf(name, "fixedResponseConfig.contentType: %q: must be one of %s", *fc.ContentType, strings.Join(fixedContentTypes, ", "))
			return nil
		}
		out.ContentType = *fc.ContentType
	}
	if fc.MessageBody != nil {
		if len(*fc.MessageBody) > 1024 {
			a.errorf(name, "fixedResponseConfig.messageBody: %d bytes; the most is 1024", len(*fc.MessageBody))
			return nil
		}
		out.MessageBody = *fc.MessageBody
	}
	return &action{fixed: out}
}

// forwardAction resolves a forward action's target groups. As on the ALB, a single target
// group needs no weight and several need one each; a weight of 0 sends nothing to its
// Service (the usual first and last step of moving traffic from one cluster to another).
func (x *index) forwardAction(a annotations, name, ns string, s backendSettings, act *albAction) *action {
	if act.TargetGroupARN != nil {
		a.errorf(name, "targetGroupARN: an AWS target group cannot be reached from milvus-lb; use forwardConfig.targetGroups with serviceName and servicePort")
		return nil
	}
	fc := act.ForwardConfig
	if fc == nil || len(fc.TargetGroups) == 0 {
		a.errorf(name, "type forward needs forwardConfig.targetGroups with at least one serviceName and servicePort")
		return nil
	}
	if st := fc.TargetGroupStickinessConfig; st != nil && st.Enabled != nil && *st.Enabled {
		a.r.warnf(annotationPath(name), "forwardConfig.targetGroupStickinessConfig: not supported and ignored: each call is sent by weight on its own")
	}
	out := &action{}
	total, ok := int64(0), true
	for i, tg := range fc.TargetGroups {
		at := fmt.Sprintf("forwardConfig.targetGroups[%d]", i)
		w, why := targetWeight(tg, len(fc.TargetGroups))
		if why == "" {
			why = targetService(tg)
		}
		if why != "" {
			a.errorf(name, "%s%s", at, why)
			ok = false
			continue
		}
		be := x.actionBackend(a, name, ns, at, tg, s)
		if be == nil {
			ok = false
			continue
		}
		total += w
		out.forward = append(out.forward, config.WeightedBackend{Backend: be.Key, Weight: int(w)})
		out.backends = append(out.backends, be)
	}
	if ok && total == 0 {
		a.errorf(name, "forwardConfig.targetGroups: every weight is 0; at least one target group must take calls")
		ok = false
	}
	if !ok {
		return nil
	}
	return out
}

func targetWeight(tg targetGroup, n int) (int64, string) {
	switch {
	case tg.Weight == nil && n > 1:
		return 0, ".weight: required when forwarding to several target groups"
	case tg.Weight == nil:
		return 1, ""
	case *tg.Weight < 0 || *tg.Weight > 999:
		return 0, fmt.Sprintf(".weight: %d: must be from 0 to 999", *tg.Weight)
	}
	return *tg.Weight, ""
}

func targetService(tg targetGroup) string {
	switch {
	case tg.TargetGroupARN != nil:
		return ".targetGroupARN: an AWS target group cannot be reached from milvus-lb; use serviceName and servicePort"
	case tg.ServiceName == nil || *tg.ServiceName == "":
		return ".serviceName: required"
	case tg.ServicePort == nil:
		return ".servicePort: required (a port number or name of the Service)"
	}
	return ""
}

// actionBackend resolves one target group as a path's backend is resolved, reporting
// against the annotation with the target group's own field names.
func (x *index) actionBackend(a annotations, name, ns, at string, tg targetGroup, s backendSettings) *config.Backend {
	ref := networkingv1.ServiceBackendPort{}
	if tg.ServicePort.Type == intstr.String {
		ref.Name = tg.ServicePort.StrVal
	} else {
		ref.Number = tg.ServicePort.IntVal
	}
	ib := &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: *tg.ServiceName, Port: ref}}
	sub := &reporter{file: a.r.file, object: a.r.object}
	be := x.backend(ns, ib, field.NewPath("x"), s, sub)
	for _, p := range sub.problems {
		p.Message = at + "." + targetGroupField[strings.TrimPrefix(p.Field, "x.")] + ": " + p.Message
		p.Field = annotationPath(name).String()
		a.r.problems = append(a.r.problems, p)
	}
	return be
}

// targetGroupField names, in a target group, the Ingress backend fields backend reports.
var targetGroupField = map[string]string{
	"service.name": "serviceName", "service.port": "servicePort",
	"service.port.name": "servicePort", "service.port.number": "servicePort",
}
