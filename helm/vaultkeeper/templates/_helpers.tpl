{{/* Chart name, overridable. */}}
{{- define "vaultkeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "vaultkeeper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vaultkeeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The recommended labels. Called with (dict "root" $ "job" $jobName); job may be empty. */}}
{{- define "vaultkeeper.labels" -}}
helm.sh/chart: {{ include "vaultkeeper.chart" .root }}
{{ include "vaultkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: vaultkeeper
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "vaultkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaultkeeper.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .job }}
app.kubernetes.io/component: {{ .job }}
{{- end }}
{{- end }}

{{/* Name of a job's CronJob (and ConfigMap, NetworkPolicy, RBAC objects). */}}
{{- define "vaultkeeper.jobFullname" -}}
{{- $name := printf "%s-%s" (include "vaultkeeper.fullname" .root) .job }}
{{- /* The CronJob controller appends an 11-character suffix to make each Job's name. */}}
{{- if gt (len $name) 52 }}
{{- fail (printf "jobs.%s: the CronJob name %q is longer than 52 characters; shorten the release name or set fullnameOverride" .job $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/*
A job's settings: jobDefaults, then the job's own keys on top (a key the job sets replaces the
default's whole value, even when it is 0, false or empty). Returns YAML; use with fromYaml.
*/}}
{{- define "vaultkeeper.jobSettings" -}}
{{- $merged := dict }}
{{- range $k, $v := .root.Values.jobDefaults }}
{{- $_ := set $merged $k $v }}
{{- end }}
{{- range $k, $v := .spec }}
{{- $_ := set $merged $k $v }}
{{- end }}
{{- toYaml $merged }}
{{- end }}

{{/* The ServiceAccount a job runs as: its own, named vaultkeeper-<job> unless told otherwise. */}}
{{- define "vaultkeeper.serviceAccountName" -}}
{{- $sa := .spec.serviceAccount | default dict }}
{{- if and (hasKey $sa "create") (not $sa.create) }}
{{- if not $sa.name }}
{{- fail (printf "jobs.%s.serviceAccount.name is required when jobs.%s.serviceAccount.create is false: name the existing ServiceAccount its Vault role is bound to" .job .job) }}
{{- end }}
{{- $sa.name }}
{{- else }}
{{- $sa.name | default (printf "vaultkeeper-%s" .job) }}
{{- end }}
{{- end }}

{{- define "vaultkeeper.createServiceAccount" -}}
{{- $sa := .spec.serviceAccount | default dict }}
{{- if or (not (hasKey $sa "create")) $sa.create }}true{{ end }}
{{- end }}

{{- define "vaultkeeper.vaultRole" -}}
{{- $v := .spec.vault | default dict }}
{{- $v.role | default (printf "vaultkeeper-%s" .job) }}
{{- end }}

{{- define "vaultkeeper.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository ($img.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Sorted names of the enabled jobs. */}}
{{- define "vaultkeeper.enabledJobs" -}}
{{- $names := list }}
{{- range $name, $spec := .Values.jobs }}
{{- if $spec.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toJson (sortAlpha $names) }}
{{- end }}

{{/*
Checks that hold across jobs, run once: Vault's address is known, the Pushgateway URL holds no
credentials, and no two enabled jobs share a ServiceAccount (each Vault Kubernetes-auth role must be bound to exactly one account).
*/}}
{{- define "vaultkeeper.validate" -}}
{{- $enabled := include "vaultkeeper.enabledJobs" . | fromJsonArray }}
{{- if and $enabled (not .Values.vault.address) }}
{{- fail "vault.address is required: the address the jobs reach Vault at, e.g. https://vault-active.vault.svc:8200" }}
{{- end }}
{{- /* The URL lands in a ConfigMap and in NOTES: credentials there would be readable by anyone who can read the namespace's ConfigMaps. The message never repeats the URL. */}}
{{- with .Values.metrics.pushgatewayUrl }}
{{- if (urlParse .).userinfo }}
{{- fail "metrics.pushgatewayUrl: credentials in the URL would be stored in a ConfigMap and printed by helm; reach the Pushgateway without them (restrict it with networkPolicy.pushgateway), or run the job outside the chart with PUSHGATEWAY_URL" }}
{{- end }}
{{- end }}
{{- $seen := dict }}
{{- range $name := $enabled }}
{{- $spec := index $.Values.jobs $name }}
{{- $sa := include "vaultkeeper.serviceAccountName" (dict "root" $ "job" $name "spec" $spec) }}
{{- if hasKey $seen $sa }}
{{- fail (printf "jobs.%s.serviceAccount.name: ServiceAccount %q is already used by jobs.%s; every job needs its own, because its Vault role is bound to exactly one" $name $sa (get $seen $sa)) }}
{{- end }}
{{- $_ := set $seen $sa $name }}
{{- end }}
{{- end }}
