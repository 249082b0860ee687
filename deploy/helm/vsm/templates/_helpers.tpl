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

{{/* A LabelSelector of every enabled component's and agent host's pods of this release (not RabbitMQ). */}}
{{- define "vsm.componentPodsSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "vsm.name" . }}
  app.kubernetes.io/instance: {{ .Release.Name }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values:
      {{- range $name, $_ := include "vsm.workloads" . | fromYaml }}
      - {{ $name }}
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

{{/*
The AMQP URL(s) of the chart's broker (single: its Service; cluster: every node, comma-
separated, so a service moves to another node when it loses one), or the external one(s).
*/}}
{{- define "vsm.amqpUrl" -}}
{{- if .Values.rabbitmq.enabled }}
{{- $auth := .Values.rabbitmq.auth }}
{{- $user := printf "%s:%s" (urlquery $auth.username) (urlquery $auth.password) }}
{{- $name := include "vsm.rabbitmqFullname" . }}
{{- if eq .Values.rabbitmq.mode "cluster" }}
{{- $urls := list }}
{{- range $i := until (int .Values.rabbitmq.cluster.replicas) }}
{{- $urls = append $urls (printf "amqp://%s@%s-server-%d.%s-nodes.%s.svc:5672/" $user $name $i $name $.Release.Namespace) }}
{{- end }}
{{- join "," $urls }}
{{- else }}
{{- printf "amqp://%s@%s.%s.svc:5672/" $user $name .Release.Namespace }}
{{- end }}
{{- else }}
{{- .Values.broker.external.url }}
{{- end }}
{{- end }}

{{/* One AMQP URL, for KEDA's RabbitMQ scaler (it takes a single host): the broker's Service. */}}
{{- define "vsm.amqpServiceUrl" -}}
{{- if .Values.rabbitmq.enabled }}
{{- $auth := .Values.rabbitmq.auth }}
{{- printf "amqp://%s:%s@%s.%s.svc:5672/" (urlquery $auth.username) (urlquery $auth.password) (include "vsm.rabbitmqFullname" .) .Release.Namespace }}
{{- else }}
{{- first (splitList "," .Values.broker.external.url) }}
{{- end }}
{{- end }}

{{/* The labels of the chart's broker pods: its StatefulSet's, or those the cluster operator sets. */}}
{{- define "vsm.brokerPodLabels" -}}
{{- if eq .Values.rabbitmq.mode "cluster" -}}
app.kubernetes.io/name: {{ include "vsm.rabbitmqFullname" . }}
app.kubernetes.io/component: rabbitmq
{{- else }}
{{- include "vsm.selectorLabels" (list . "rabbitmq") }}
{{- end }}
{{- end }}

{{/*
MCP_AUTH_TOKEN: the value given; else the one the release's Secret holds already (`lookup`,
so upgrades keep it); else a new random one. Empty when generation is off.
*/}}
{{- define "vsm.mcpAuthToken" -}}
{{- $secrets := .Values.secrets }}
{{- if $secrets.mcpAuthToken }}
{{- $secrets.mcpAuthToken }}
{{- else if $secrets.generateMcpAuthToken }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "vsm.secretName" .) }}
{{- $kept := dig "data" "MCP_AUTH_TOKEN" "" ($existing | default dict) }}
{{- ternary ($kept | b64dec) (randAlphaNum 40) (ne $kept "") }}
{{- end }}
{{- end }}

{{/*
MCP_ALLOWED_HOSTS of the gateway (JSON list): its Service's names in the cluster (any port),
loopback (kubectl port-forward), the Ingress hosts and access.hosts.
*/}}
{{- define "vsm.gatewayHosts" -}}
{{- $gateway := index .Values.components "mcp-gateway" }}
{{- $service := include "vsm.componentFullname" (list . "mcp-gateway") }}
{{- $hosts := list "127.0.0.1:*" "localhost:*" "[::1]:*" }}
{{- range $name := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) }}
{{- $hosts = concat $hosts (list $name (printf "%s:*" $name)) }}
{{- end }}
{{- if and $gateway.ingress $gateway.ingress.enabled }}
{{- range $gateway.ingress.hosts }}
{{- $hosts = concat $hosts (list .host (printf "%s:*" .host)) }}
{{- end }}
{{- end }}
{{- with $gateway.access }}
{{- $hosts = concat $hosts (.hosts | default list) }}
{{- end }}
{{- $hosts | uniq | toJson }}
{{- end }}

{{/* MCP_ALLOWED_ORIGINS of the gateway (JSON list): loopback, the Ingress hosts, access.origins. */}}
{{- define "vsm.gatewayOrigins" -}}
{{- $gateway := index .Values.components "mcp-gateway" }}
{{- $origins := list "http://127.0.0.1:*" "http://localhost:*" "http://[::1]:*" }}
{{- if and $gateway.ingress $gateway.ingress.enabled }}
{{- $tls := list }}
{{- range $gateway.ingress.tls }}
{{- $tls = concat $tls (.hosts | default list) }}
{{- end }}
{{- range $gateway.ingress.hosts }}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" (has .host $tls)) .host) }}
{{- end }}
{{- end }}
{{- with $gateway.access }}
{{- $origins = concat $origins (.origins | default list) }}
{{- end }}
{{- $origins | uniq | toJson }}
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
entry (vsm.settings), its image <default.image.repository>-<component>.
*/}}
{{- define "vsm.component" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 }}
{{- $entry := index $root.Values.components $name }}
{{- include "vsm.settings" (list $root $entry (printf "%s-%s" $root.Values.default.image.repository $name)) }}
{{- end }}

{{/*
(list $ entry imageRepository) -> YAML of a workload's effective values: `default` merged
with the entry. Maps merge key by key, extraEnv is appended, lists and scalars given replace;
the image is imageRepository unless the entry names its own.
*/}}
{{- define "vsm.settings" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 }}
{{- $d := $root.Values.default }}
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
{{- $_ := set $image "repository" (index . 2) }}
{{- end }}
{{- $_ := set $image "appVersion" $root.Chart.AppVersion }}
{{- $_ := set $out "image" (include "vsm.image" $image) }}
{{- $_ := set $out "pullPolicy" $image.pullPolicy }}
{{- $_ := set $out "secretEnv" ($c.secretEnv | default list) }}
{{- $_ := set $out "networkPolicy" ($c.networkPolicy | default dict) }}
{{- $_ := set $out "ingress" ($c.ingress | default dict) }}
{{- toYaml $out }}
{{- end }}

{{/*
(list $ "research") -> YAML of an agent host's effective values: `agentHosts.research` over
`default` like a component (vsm.settings), on the operations image (the `vsm-agent` console
script ships in the operations distribution), plus what only a host has: command, args,
types, keda. It may have the Anthropic key (the LLM client it lends its agents) and HTTPS
to the internet, as operations has, unless its entry says otherwise.
*/}}
{{- define "vsm.agentHost" -}}
{{- $root := index . 0 -}}
{{- $entry := index $root.Values.agentHosts (index . 1) }}
{{- $given := omit $entry "command" "args" "types" "keda" }}
{{- if not (hasKey $given "secretEnv") }}
{{- $_ := set $given "secretEnv" (list "ANTHROPIC_API_KEY") }}
{{- end }}
{{- $policy := deepCopy ($entry.networkPolicy | default dict) }}
{{- if not (hasKey $policy "internetEgress") }}
{{- $_ := set $policy "internetEgress" true }}
{{- end }}
{{- $_ := set $given "networkPolicy" $policy }}
{{- $operations := printf "%s-operations" $root.Values.default.image.repository }}
{{- $out := include "vsm.settings" (list $root $given $operations) | fromYaml }}
{{- $_ := set $out "command" ($entry.command | default (list "vsm-agent" "run")) }}
{{- $_ := set $out "args" ($entry.args | default list) }}
{{- $_ := set $out "types" ($entry.types | default list) }}
{{- /* key by key: a false or 0 given replaces the default (sprig's merges would keep it) */}}
{{- $keda := deepCopy $root.Values.agentHostDefaults.keda }}
{{- range $key, $value := $entry.keda }}
{{- $_ := set $keda $key $value }}
{{- end }}
{{- $_ := set $out "keda" $keda }}
{{- toYaml $out }}
{{- end }}

{{/* (list $ "research") -> the workload name of an agent host: host-research. */}}
{{- define "vsm.agentHostComponent" -}}
{{- printf "host-%s" (index . 1) }}
{{- end }}

{{/*
Every workload of the release as YAML, workload name -> effective values: the enabled
components (vsm.component) and the agent hosts (vsm.agentHost, named host-<name>, with
`host: <name>`). Templates that treat hosts like components range over this.
*/}}
{{- define "vsm.workloads" -}}
{{- $out := dict }}
{{- range $name, $entry := .Values.components }}
{{- if $entry.enabled }}
{{- $_ := set $out $name (include "vsm.component" (list $ $name) | fromYaml) }}
{{- end }}
{{- end }}
{{- range $name, $_ := .Values.agentHosts }}
{{- $host := include "vsm.agentHost" (list $ $name) | fromYaml }}
{{- $_ := set $host "host" $name }}
{{- $_ := set $out (include "vsm.agentHostComponent" (list $ $name)) $host }}
{{- end }}
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
{{- $secrets := .Values.secrets }}
{{- if and $mcp.enabled $mcp.ingress $mcp.ingress.enabled (not (or $secrets.mcpAuthToken $secrets.generateMcpAuthToken $secrets.operateTokens $secrets.existingSecret)) }}
{{- fail "components.mcp-gateway.ingress.enabled publishes the API, whose routes need a token: set secrets.mcpAuthToken, secrets.operateTokens or secrets.existingSecret (or leave secrets.generateMcpAuthToken on)" }}
{{- end }}
{{- range $name, $component := .Values.components }}
{{- if and $component.egress (ne $name "operations") }}
{{- fail (printf "components.%s.egress: only operations runs agents that send HTTP requests" $name) }}
{{- end }}
{{- if and $component.access (ne $name "mcp-gateway") }}
{{- fail (printf "components.%s.access: only mcp-gateway checks Host and Origin" $name) }}
{{- end }}
{{- end }}
{{- if and .Values.rabbitmq.enabled (eq .Values.rabbitmq.mode "cluster") (eq .Values.rabbitmq.auth.password "vsm") }}
{{- fail "rabbitmq.mode=cluster is the production broker: set rabbitmq.auth.password (not the trial default)" }}
{{- end }}
{{- if and .Values.monitoring.prometheusRule.enabled (not .Values.monitoring.serviceMonitor.enabled) }}
{{- fail "monitoring.prometheusRule.enabled: its alerts select the labels the ServiceMonitor's scrape gives (namespace, service); set monitoring.serviceMonitor.enabled=true" }}
{{- end }}
{{- if and .Values.keda.enabled (not .Values.components.operations.enabled) }}
{{- fail "keda.enabled scales operations, but components.operations.enabled is false" }}
{{- end }}
{{- if and .Values.agentHosts (not .Values.components.operations.enabled) }}
{{- fail "agentHosts register with operations, but components.operations.enabled is false" }}
{{- end }}
{{- range $name, $_ := .Values.agentHosts }}
{{- $host := include "vsm.agentHost" (list $ $name) | fromYaml }}
{{- if and $host.keda.enabled (not $host.types) }}
{{- fail (printf "agentHosts.%s.keda.enabled scales on the partition queues of the host's agent types: list them in agentHosts.%s.types" $name $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* (list $ "operations") -> KEDA's TriggerAuthentication of that workload: the broker's URL. */}}
{{- define "vsm.kedaAuthentication" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ include "vsm.componentFullname" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "vsm.labels" . | nindent 4 }}
spec:
  secretTargetRef:
    - parameter: host
      name: {{ include "vsm.brokerSecretName" $root }}
      # One URL: the broker's Service (an existing Secret's key must hold a single URL too).
      key: {{ ternary $root.Values.broker.external.existingSecretKey "KEDA_HOST" (ne $root.Values.broker.external.existingSecret "") }}
{{- end }}

{{/* "true" when KEDA scales anything (operations or an agent host): its operator then reads queue depths from the broker. */}}
{{- define "vsm.kedaEnabled" -}}
{{- $on := .Values.keda.enabled }}
{{- range $_, $host := .Values.agentHosts }}
{{- if and $host.keda (hasKey $host.keda "enabled") }}
{{- $on = or $on $host.keda.enabled }}
{{- else }}
{{- $on = or $on $.Values.agentHostDefaults.keda.enabled }}
{{- end }}
{{- end }}
{{- ternary "true" "" $on }}
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
