{{/* The chart's name, cut to a DNS label. */}}
{{- define "ticketing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, the prefix of every object; the release name alone when it
already contains the chart's name. */}}
{{- define "ticketing.fullname" -}}
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

{{/* The name of one component's objects: <fullname>-<component>. */}}
{{- define "ticketing.componentName" -}}
{{- printf "%s-%s" (include "ticketing.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change over a release's life: the only ones selectors use. */}}
{{- define "ticketing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticketing.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ticketing.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ticketing.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ticketing
{{- end }}

{{/* Selector labels of one component; called with (dict "root" $ "component" "user"). */}}
{{- define "ticketing.componentSelectorLabels" -}}
{{ include "ticketing.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ticketing.componentLabels" -}}
{{ include "ticketing.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The one image, by digest when given, else by tag (the chart's appVersion by default). */}}
{{- define "ticketing.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The chart's own Secret: generated credentials and connection URLs with passwords. */}}
{{- define "ticketing.secretName" -}}
{{- include "ticketing.fullname" . }}
{{- end }}

{{/* The Secret holding the signing keys and the operator's token (secret.yaml lists its keys). */}}
{{- define "ticketing.appSecretName" -}}
{{- default (include "ticketing.secretName" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Which component signs each kind of token (and alone holds its private keys). */}}
{{- define "ticketing.signers" -}}
login: user
admission: queue
{{- end }}

{{- define "ticketing.serviceAccountName" -}}
{{- include "ticketing.fullname" . }}
{{- end }}

{{- define "ticketing.operatorServiceAccountName" -}}
{{- include "ticketing.componentName" (dict "root" . "component" "operator") }}
{{- end }}

{{/* The port every component's Service listens on (services.yaml). */}}
{{- define "ticketing.servicePort" -}}
80
{{- end }}

{{/* The in-cluster URL of one component's Service; called with (dict "root" $ "component"
"event"). */}}
{{- define "ticketing.serviceUrl" -}}
{{- printf "http://%s:%s" (include "ticketing.componentName" .) (include "ticketing.servicePort" .root) }}
{{- end }}

{{/* Host names of the in-cluster backing servers. */}}
{{- define "ticketing.redisHost" -}}
{{- include "ticketing.componentName" (dict "root" . "component" "redis") }}
{{- end }}
{{- define "ticketing.mariadbHost" -}}
{{- include "ticketing.componentName" (dict "root" . "component" "mariadb") }}
{{- end }}
{{- define "ticketing.kafkaHost" -}}
{{- include "ticketing.componentName" (dict "root" . "component" "kafka") }}
{{- end }}

{{/* Stop the render with one sentence when a backing server is neither in the release nor
pointed at; the schema cannot say "one of these two values" as clearly. */}}
{{- define "ticketing.validate" -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) }}
{{- fail "redis.enabled is false: set externalRedis.url or externalRedis.existingSecret to the Redis the services should use" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.cluster }}
{{- fail "externalRedis.cluster is true, but redis.enabled runs one Redis server in the release: set redis.enabled to false and point externalRedis at a node of the cluster" }}
{{- end }}
{{- if and (not .Values.mariadb.enabled) (not .Values.externalDatabase.existingSecret) }}
{{- fail "mariadb.enabled is false: set externalDatabase.existingSecret to a Secret holding the database URL" }}
{{- end }}
{{- if and (not .Values.kafka.enabled) (not .Values.externalKafka.bootstrap) }}
{{- fail "kafka.enabled is false: set externalKafka.bootstrap to the brokers the services should use" }}
{{- end }}
{{- range $component, $values := .Values.components }}
{{- if $values.enabled }}
{{- range $name, $peer := $values.peers }}
{{- $target := get $.Values.components $peer }}
{{- if not (and $target $target.enabled $target.service) }}
{{- fail (printf "components.%s.peers: %s points at component %q, which is not an enabled component with a Service" $component $name $peer) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.kafka.enabled }}
{{- range $family, $topic := .Values.kafka.topics }}
{{- if or (gt (int $topic.replicationFactor) 1) (gt (int (default 1 $topic.minInsyncReplicas)) 1) }}
{{- fail (printf "kafka.enabled runs one broker, which holds one copy of each topic: set kafka.topics.%s.replicationFactor to 1 and minInsyncReplicas to null or 1, or point externalKafka.bootstrap at a cluster with more brokers" $family) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.gatewayApi.enabled (not .Values.gatewayApi.parentRefs) }}
{{- fail "gatewayApi.enabled is true: set gatewayApi.parentRefs to the Gateway the HTTPRoute attaches to" }}
{{- end }}
{{- range .Values.ingress.paths }}
{{- $target := get $.Values.components .component }}
{{- if not (and $target $target.enabled $target.service) }}
{{- fail (printf "ingress.paths: %s points at component %q, which is not an enabled component with a Service" .path .component) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The environment of one component: the shared settings, then only the connections to
the backing servers it declares, then the extra variables. */}}
{{- define "ticketing.env" -}}
{{- $root := .root }}
{{- $config := include "ticketing.fullname" $root }}
- name: TICKETING_ENVIRONMENT
  valueFrom: {configMapKeyRef: {name: {{ $config }}, key: environment}}
- name: TICKETING_LOG_LEVEL
  valueFrom: {configMapKeyRef: {name: {{ $config }}, key: log-level}}
- name: TICKETING_HTTP_HOST
  value: "0.0.0.0"
- name: TICKETING_HTTP_PORT
  value: {{ .values.port | quote }}
{{- /* A private key reaches its signer alone; every other component verifies with the
public keys the signer publishes. The operator's token reaches the operator alone; the services
it calls hold its SHA-256. tests/charts/test_key_custody.py holds the chart to this. */}}
{{- $secret := include "ticketing.appSecretName" $root }}
{{- range $kind, $signer := include "ticketing.signers" $root | fromYaml }}
{{- if eq $.component $signer }}
- name: {{ printf "TICKETING_%s_SIGNING_KEYS" ($kind | upper) }}
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ printf "%s-signing-keys" $kind }}}}
{{- else }}
- name: {{ printf "TICKETING_%s_JWKS_URL" ($kind | upper) }}
  value: {{ printf "%s/.well-known/jwks.json" (include "ticketing.serviceUrl" (dict "root" $root "component" $signer)) | quote }}
{{- end }}
{{- end }}
{{- if has .component (list "event" "seat") }}
- name: TICKETING_OPERATOR_TOKEN_SHA256
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: operator-token-sha256}}
{{- end }}
{{- if eq .component "operator" }}
- name: TICKETING_OPERATOR_TOKEN
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: operator-token}}
{{- end }}
{{- if has "redis" .values.backends }}
- name: TICKETING_REDIS_URL
{{- if $root.Values.redis.enabled }}
  valueFrom: {configMapKeyRef: {name: {{ $config }}, key: redis-url}}
{{- else if $root.Values.externalRedis.existingSecret }}
  valueFrom: {secretKeyRef: {name: {{ $root.Values.externalRedis.existingSecret }}, key: {{ $root.Values.externalRedis.existingSecretKey }}}}
{{- else }}
  valueFrom: {configMapKeyRef: {name: {{ $config }}, key: redis-url}}
{{- end }}
{{- if $root.Values.externalRedis.cluster }}
- name: TICKETING_REDIS_CLUSTER
  value: "true"
{{- end }}
{{- end }}
{{- if has "database" .values.backends }}
- name: TICKETING_DATABASE_URL
{{- if $root.Values.mariadb.enabled }}
  valueFrom: {secretKeyRef: {name: {{ include "ticketing.secretName" $root }}, key: database-url}}
{{- else }}
  valueFrom: {secretKeyRef: {name: {{ $root.Values.externalDatabase.existingSecret }}, key: {{ $root.Values.externalDatabase.existingSecretKey }}}}
{{- end }}
{{- end }}
{{- if has "kafka" .values.backends }}
- name: TICKETING_KAFKA_BOOTSTRAP
  valueFrom: {configMapKeyRef: {name: {{ $config }}, key: kafka-bootstrap}}
- name: TICKETING_KAFKA_WAIT_SECONDS
  value: {{ $root.Values.kafka.waitSeconds | quote }}
{{- /* How the topics it finds missing are created: deadLetter -> TICKETING_KAFKA_DEAD_LETTER_*. */}}
{{- range $family, $topic := $root.Values.kafka.topics }}
{{- $variable := printf "TICKETING_KAFKA_%s" ($family | snakecase | upper) }}
- name: {{ $variable }}_PARTITIONS
  value: {{ $topic.partitions | quote }}
- name: {{ $variable }}_REPLICATION_FACTOR
  value: {{ $topic.replicationFactor | quote }}
{{- with $topic.minInsyncReplicas }}
- name: {{ $variable }}_MIN_INSYNC_REPLICAS
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .component "gateway" }}
{{- /* Where the gateway finds each service: built from the components, so a renamed
release or a disabled service never leaves a hand-typed URL behind. */}}
{{- range $name, $values := $root.Values.components }}
{{- if and $values.enabled $values.service (ne $name "gateway") }}
- name: {{ printf "TICKETING_GATEWAY_%s_URL" ($name | upper | replace "-" "_") }}
  value: {{ include "ticketing.serviceUrl" (dict "root" $root "component" $name) | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $peer := .values.peers }}
- name: {{ $name }}
  value: {{ include "ticketing.serviceUrl" (dict "root" $root "component" $peer) | quote }}
{{- end }}
{{- if eq .component "operator" }}
- name: TICKETING_OPERATOR_RETRY_DEPLOYMENT
  value: {{ include "ticketing.componentName" (dict "root" $root "component" "retry-worker") | quote }}
- name: TICKETING_OPERATOR_NAMESPACES
  value: {{ join "," (default (list $root.Release.Namespace) $root.Values.operator.watchNamespaces) | quote }}
- name: TICKETING_OPERATOR_STANDALONE
  value: {{ $root.Values.operator.standalone | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod spec shared by every component's Deployment and the migration Job. */}}
{{- define "ticketing.podSpec" -}}
{{- $root := .root }}
serviceAccountName: {{ .serviceAccountName }}
automountServiceAccountToken: {{ .automountToken }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and (has "database" .values.backends) $root.Values.migrations.enabled (ne .component "migrate") }}
{{- $migrate := dict "root" $root "component" "migrate" "values" (dict "port" 0 "backends" (list "database")) }}
initContainers:
  {{- /* The migration Job brings the schema up; this pod's service starts only then. */}}
  - name: wait-for-migrations
    image: {{ include "ticketing.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: ["python", "-m", "ticketing", "migrate", "--wait"]
    env:
      {{- include "ticketing.env" $migrate | nindent 6 }}
    resources:
      {{- toYaml $root.Values.migrations.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
{{- end }}
containers:
  - name: {{ .containerName }}
    image: {{ include "ticketing.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: ["python", "-m", "ticketing", {{ .values.command | quote }}]
    env:
      {{- include "ticketing.env" . | nindent 6 }}
    {{- if .values.port }}
    ports:
      - name: {{ ternary "http" "metrics" (default false .values.service) }}
        containerPort: {{ .values.port }}
        protocol: TCP
    {{- end }}
    {{- with .values.probes }}
    {{- with .liveness }}
    {{- /* Liveness starts once the process first answers: while it waits for its backing
    servers (kafka.waitSeconds at most) the kubelet leaves it be. */}}
    startupProbe:
      httpGet: {path: {{ . }}, port: {{ $.values.port }}}
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: {{ add (div $root.Values.kafka.waitSeconds 5) 7 }}
    livenessProbe:
      httpGet: {path: {{ . }}, port: {{ $.values.port }}}
      periodSeconds: 10
      timeoutSeconds: 3
      failureThreshold: 3
    {{- end }}
    {{- with .readiness }}
    readinessProbe:
      httpGet: {path: {{ . }}, port: {{ $.values.port }}}
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 2
    {{- end }}
    {{- end }}
    resources:
      {{- toYaml .values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      # The root filesystem is read-only; Python and its libraries may still want a /tmp.
      - {name: tmp, mountPath: /tmp}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: 64Mi}
{{- end }}
