{{/* The name of every object: <release>-bounceguard unless the release is named bounceguard. */}}
{{- define "bounceguard.fullname" -}}
{{- if contains "bounceguard" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-bounceguard" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bounceguard.labels" -}}
app.kubernetes.io/name: bounceguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bounceguard.selector" -}}
app.kubernetes.io/name: bounceguard
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}
