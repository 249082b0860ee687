{{/* Names, labels and the merge of `default` with a component's entry. */}}

{{- define "vsm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vsm.fullname" -}}
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

{{/* (list $ "queen") -> "<fullname>-queen" */}}
{{- define "vsm.componentFullname" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "vsm.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vsm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* (list $ "queen") -> selector labels of that component's pods */}}
{{- define "vsm.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "vsm.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* (list $ "queen") -> every standard label */}}
{{- define "vsm.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "vsm.chart" $root }}
{{ include "vsm.selectorLabels" . }}
app.kubernetes.io/part-of: vsm
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end }}

{{/* A LabelSelector of every enabled component's pods of this release (not RabbitMQ). */}}
{{- define "vsm.componentPodsSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "vsm.name" . }}
  app.kubernetes.io/instance: {{ .Release.Name }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values:
      {{- range $name, $component := .Values.components }}
      {{- if $component.enabled }}
      - {{ $name }}
      {{- end }}
      {{- end }}
{{- end }}

{{- define "vsm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vsm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vsm.secretName" -}}
{{- default (printf "%s-secrets" (include "vsm.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "vsm.brokerSecretName" -}}
{{- default (printf "%s-broker" (include "vsm.fullname" .)) .Values.broker.external.existingSecret }}
{{- end }}

{{- define "vsm.brokerSecretKey" -}}
{{- if .Values.broker.external.existingSecret }}
{{- .Values.broker.external.existingSecretKey }}
{{- else -}}
AMQP_URL
{{- end }}
{{- end }}

{{- define "vsm.rabbitmqFullname" -}}
{{- include "vsm.componentFullname" (list . "rabbitmq") }}
{{- end }}

{{/* The AMQP URL of the bundled broker, or the external one given as a value. */}}
{{- define "vsm.amqpUrl" -}}
{{- if .Values.rabbitmq.enabled }}
{{- $auth := .Values.rabbitmq.auth }}
{{- printf "amqp://%s:%s@%s.%s.svc:5672/" (urlquery $auth.username) (urlquery $auth.password) (include "vsm.rabbitmqFullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.broker.external.url }}
{{- end }}
{{- end }}

{{/* (dict "repository" "tag" "digest" "appVersion") -> repository:tag or repository@digest */}}
{{- define "vsm.image" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (default .appVersion .tag) }}
{{- end }}
{{- end }}

{{/*
(list $ "queen") -> YAML of the component's effective values: `default` merged with its
entry. Maps merge key by key, extraEnv is appended, lists and scalars given replace.
*/}}
{{- define "vsm.component" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 }}
{{- $d := $root.Values.default }}
{{- $c := index $root.Values.components $name }}
{{- $out := dict }}
{{- range $key := list "env" "resources" "podAnnotations" "podLabels" "nodeSelector" "service" }}
{{- $_ := set $out $key (mergeOverwrite (deepCopy (index $d $key)) (deepCopy (index $c $key | default dict))) }}
{{- end }}
{{- range $key := list "replicas" "imagePullSecrets" "tolerations" "affinity" "topologySpreadConstraints" "priorityClassName" }}
{{- $_ := set $out $key (ternary (index $c $key) (index $d $key) (hasKey $c $key)) }}
{{- end }}
{{- $_ := set $out "extraEnv" (concat $d.extraEnv ($c.extraEnv | default list)) }}
{{- $image := mergeOverwrite (deepCopy $d.image) (deepCopy ($c.image | default dict)) }}
{{- if not (and $c.image $c.image.repository) }}
{{- $_ := set $image "repository" (printf "%s-%s" $d.image.repository $name) }}
{{- end }}
{{- $_ := set $image "appVersion" $root.Chart.AppVersion }}
{{- $_ := set $out "image" (include "vsm.image" $image) }}
{{- $_ := set $out "pullPolicy" $image.pullPolicy }}
{{- $_ := set $out "secretEnv" ($c.secretEnv | default list) }}
{{- $_ := set $out "networkPolicy" ($c.networkPolicy | default dict) }}
{{- $_ := set $out "ingress" ($c.ingress | default dict) }}
{{- toYaml $out }}
{{- end }}

{{/* Values that contradict each other fail the render with a message saying what to change. */}}
{{- define "vsm.validate" -}}
{{- $external := .Values.broker.external }}
{{- if and .Values.rabbitmq.enabled (or $external.url $external.existingSecret) }}
{{- fail "broker.external is set but rabbitmq.enabled is true: set rabbitmq.enabled=false to use the external broker" }}
{{- end }}
{{- if and (not .Values.rabbitmq.enabled) (not (or $external.url $external.existingSecret)) }}
{{- fail "no broker: set broker.external.url or broker.external.existingSecret, or rabbitmq.enabled=true" }}
{{- end }}
{{- $mcp := index .Values.components "mcp-gateway" }}
{{- if and $mcp.enabled $mcp.ingress $mcp.ingress.enabled (not (or .Values.secrets.mcpAuthToken .Values.secrets.existingSecret)) }}
{{- fail "components.mcp-gateway.ingress.enabled exposes the MCP and REST API: set secrets.mcpAuthToken (or secrets.existingSecret with MCP_AUTH_TOKEN)" }}
{{- end }}
{{- if and .Values.keda.enabled (not .Values.components.operations.enabled) }}
{{- fail "keda.enabled scales operations, but components.operations.enabled is false" }}
{{- end }}
{{- end }}

{{/* The egress rule to the DNS servers. */}}
{{- define "vsm.dnsEgress" -}}
to:
  {{- toYaml .Values.networkPolicy.dns.to | nindent 2 }}
ports:
  - port: 53
    protocol: UDP
  - port: 53
    protocol: TCP
{{- end }}

{{/* The bundled RabbitMQ's configuration, after the image's own. */}}
{{- define "vsm.rabbitmqConf" -}}
vm_memory_high_watermark.absolute = {{ .Values.rabbitmq.memoryHighWatermark }}
# The image allows guest from anywhere; the chart's user replaces it, and guest stays local.
loopback_users.guest = true
{{- end }}
