{{- define "milvus-lb.labels" -}}
app.kubernetes.io/name: milvus-lb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "milvus-lb.selector" -}}
app.kubernetes.io/name: milvus-lb
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "milvus-lb.fullname" -}}
{{- if eq .Release.Name "milvus-lb" }}milvus-lb{{ else }}{{ printf "%s-milvus-lb" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
