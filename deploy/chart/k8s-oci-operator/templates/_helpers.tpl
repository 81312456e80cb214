{{/*
Names. The release named after the chart (as deploy/ is rendered) keeps the
plain names the operator's docs and `check` use (ClusterRole k8s-oci-operator,
Role k8s-oci-operator-leader-election); any other release prefixes them, so
the cluster-scoped ones of two releases never collide.
*/}}
{{- define "k8s-oci-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k8s-oci-operator.fullname" -}}
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

{{- define "k8s-oci-operator.serviceAccountName" -}}
{{- default (include "k8s-oci-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The Deployment's selector is only the name label: it is immutable, and
installs of deploy/ from before the chart select on it alone. Everything
else selects on name and instance.
*/}}
{{- define "k8s-oci-operator.deploymentSelector" -}}
app.kubernetes.io/name: {{ include "k8s-oci-operator.name" . }}
{{- end }}

{{- define "k8s-oci-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-oci-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "k8s-oci-operator.labels" -}}
{{ include "k8s-oci-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image: a digest, when set, wins over the tag. */}}
{{- define "k8s-oci-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* OCI_AUTH as the operator spells it (k8s-oci-operator run --auth). */}}
{{- define "k8s-oci-operator.authFlag" -}}
{{- $modes := dict "apiKey" "config-file" "apiKeyFields" "api-key" "instancePrincipal" "instance-principal" "okeWorkloadIdentity" "oke-workload-identity" }}
{{- $flag := get $modes .Values.auth.mode }}
{{- if not $flag }}
{{- fail (printf "auth.mode %q is not one of: %s" .Values.auth.mode (keys $modes | sortAlpha | join ", ")) }}
{{- end }}
{{- $flag }}
{{- end }}

{{/* Where the API-key Secret is mounted, and the config file in it. */}}
{{- define "k8s-oci-operator.apiKeyDir" -}}
/etc/oci
{{- end }}

{{/* Where the API key's private key and passphrase (auth.mode apiKeyFields) are mounted. */}}
{{- define "k8s-oci-operator.apiKeyFieldsDir" -}}
/etc/oci-api-key
{{- end }}

{{/* The Secret of auth.mode apiKeyFields (the schema requires it too). */}}
{{- define "k8s-oci-operator.apiKeyFieldsSecret" -}}
{{- required "auth.apiKeyFields.secretName is required with auth.mode=apiKeyFields: the Secret with keys tenancy, user, fingerprint, key (and optionally region, passphrase)" .Values.auth.apiKeyFields.secretName }}
{{- end }}

{{/* Where existing policy ConfigMaps are mounted, one directory each. */}}
{{- define "k8s-oci-operator.policyDir" -}}
/etc/k8s-oci-operator/policies
{{- end }}
