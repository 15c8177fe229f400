{{- define "pytrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pytrace.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "pytrace.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pytrace.labels" -}}
app.kubernetes.io/name: {{ include "pytrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pytrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pytrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The account the pods run as: the chart's, or (create: false) the named existing one. */}}
{{- define "pytrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pytrace.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Bytes from a number or a Kubernetes quantity (256Mi, 1Gi, 500M). */}}
{{- define "pytrace.bytes" -}}
{{- if kindIs "string" . -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $unit := regexFind "[KMGT]i?$" . -}}
{{- if $unit -}}
{{- mul (int64 (trimSuffix $unit .)) (int64 (get $units $unit)) -}}
{{- else -}}
{{- int64 . -}}
{{- end -}}
{{- else -}}
{{- int64 . -}}
{{- end -}}
{{- end -}}
