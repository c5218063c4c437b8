{{/*
Names. Everything is cut to 52 characters: the StatefulSet's pods get a
controller-revision-hash label "<name>-<10 chars>" that must fit in 63, and
"<fullname>-headless" (a Service name, at most 63) must fit as well.
*/}}
{{- define "flock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "flock.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flock.headlessName" -}}
{{- printf "%s-headless" (include "flock.fullname" .) -}}
{{- end -}}

{{/* The headless Service's fully qualified name: <fullname>-headless.<ns>.svc.<domain> */}}
{{- define "flock.headlessFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "flock.headlessName" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "flock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Labels of every object; pass (dict "ctx" $ "component" "broker"). */}}
{{- define "flock.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "flock.chart" $ctx }}
{{ include "flock.selectorLabels" $ctx }}
app.kubernetes.io/version: {{ include "flock.imageTag" $ctx | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: {{ .component | default "broker" }}
app.kubernetes.io/part-of: flock
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "flock.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "flock.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "flock.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{- define "flock.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flock.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secret names. */}}
{{- define "flock.clusterTlsSecret" -}}
{{- if .Values.clusterTls.existingSecret -}}
{{- .Values.clusterTls.existingSecret -}}
{{- else -}}
{{- printf "%s-cluster-tls" (include "flock.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flock.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "flock.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flock.authSecret" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else -}}
{{- printf "%s-auth" (include "flock.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flock.authSecretKey" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecretKey -}}
{{- else -}}
passwd
{{- end -}}
{{- end -}}

{{- define "flock.clusterSecretName" -}}
{{- if .Values.cluster.existingSecretName -}}
{{- .Values.cluster.existingSecretName -}}
{{- else -}}
{{- printf "%s-cluster-secret" (include "flock.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flock.clusterSecretKey" -}}
{{- if .Values.cluster.existingSecretName -}}
{{- .Values.cluster.existingSecretKey -}}
{{- else -}}
secret
{{- end -}}
{{- end -}}

{{/* Whether a password file is configured ("true" or ""). */}}
{{- define "flock.hasPasswordFile" -}}
{{- if or .Values.auth.passwordFile .Values.auth.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "flock.hasClusterSecret" -}}
{{- if or .Values.cluster.secret .Values.cluster.existingSecretName -}}true{{- end -}}
{{- end -}}

{{/* Which listeners are served ("true" or ""). */}}
{{- define "flock.mqttsOn" -}}
{{- if and .Values.tls.enabled .Values.listeners.mqtts.enabled -}}true{{- end -}}
{{- end -}}
{{- define "flock.wssOn" -}}
{{- if and .Values.tls.enabled .Values.listeners.wss.enabled -}}true{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: preStop sleep + drain + margin unless set. */}}
{{- define "flock.minGracePeriod" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.cluster.drainTimeoutSeconds) (int .Values.shutdownMarginSeconds) -}}
{{- end -}}

{{- define "flock.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- include "flock.minGracePeriod" . -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
Checks that need more than one value (the schema checks each value alone).
Included once, from the StatefulSet template.
*/}}
{{- define "flock.validate" -}}
{{- $v := .Values -}}
{{- if not (kindIs "invalid" $v.terminationGracePeriodSeconds) -}}
{{- $min := int (include "flock.minGracePeriod" .) -}}
{{- if lt (int $v.terminationGracePeriodSeconds) $min -}}
{{- fail (printf "terminationGracePeriodSeconds: %d is too short: it must be at least preStopSleepSeconds (%d) + cluster.drainTimeoutSeconds (%d) + shutdownMarginSeconds (%d) = %d, or a rolling upgrade kills nodes before they hand their sessions over. Leave it empty to have it computed." (int $v.terminationGracePeriodSeconds) (int $v.preStopSleepSeconds) (int $v.cluster.drainTimeoutSeconds) (int $v.shutdownMarginSeconds) $min) -}}
{{- end -}}
{{- end -}}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "invalid" $v.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable" -}}
{{- end -}}
{{- if and $v.clusterTls.enabled $v.clusterTls.certManager.enabled $v.clusterTls.existingSecret -}}
{{- fail "clusterTls: set either certManager.enabled or existingSecret, not both" -}}
{{- end -}}
{{- if $v.tls.enabled -}}
{{- if and $v.tls.certManager.enabled $v.tls.existingSecret -}}
{{- fail "tls: set either certManager.enabled or existingSecret, not both" -}}
{{- end -}}
{{- if not (or $v.tls.certManager.enabled $v.tls.existingSecret) -}}
{{- fail "tls.enabled: the MQTT listeners' certificate must come from tls.existingSecret (a Secret with tls.crt and tls.key) or tls.certManager.enabled with tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- if and $v.tls.certManager.enabled (not $v.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.issuerRef.name: name the Issuer or ClusterIssuer that signs the MQTT listeners' certificate" -}}
{{- end -}}
{{- if not (or $v.listeners.mqtts.enabled $v.listeners.wss.enabled) -}}
{{- fail "tls.enabled: enable listeners.mqtts or listeners.wss (or set tls.enabled: false)" -}}
{{- end -}}
{{- else -}}
{{- if $v.listeners.wss.enabled -}}
{{- fail "listeners.wss.enabled needs tls.enabled: true and a certificate (tls.existingSecret or tls.certManager)" -}}
{{- end -}}
{{- end -}}
{{- if and $v.tls.useIdentityAsUsername (not $v.tls.clientAuth) -}}
{{- fail "tls.useIdentityAsUsername needs tls.clientAuth: true" -}}
{{- end -}}
{{- if not (or $v.listeners.mqtt.enabled (include "flock.mqttsOn" .) $v.listeners.ws.enabled (include "flock.wssOn" .)) -}}
{{- fail "listeners: no MQTT listener is enabled (listeners.mqtt, listeners.ws, or listeners.mqtts/wss with tls.enabled)" -}}
{{- end -}}
{{- $ports := dict -}}
{{- $enabled := dict "cluster.port" $v.cluster.port "metrics.port" $v.metrics.port -}}
{{- if $v.listeners.mqtt.enabled }}{{ $_ := set $enabled "listeners.mqtt.port" $v.listeners.mqtt.port }}{{ end -}}
{{- if include "flock.mqttsOn" . }}{{ $_ := set $enabled "listeners.mqtts.port" $v.listeners.mqtts.port }}{{ end -}}
{{- if $v.listeners.ws.enabled }}{{ $_ := set $enabled "listeners.ws.port" $v.listeners.ws.port }}{{ end -}}
{{- if include "flock.wssOn" . }}{{ $_ := set $enabled "listeners.wss.port" $v.listeners.wss.port }}{{ end -}}
{{- range $n, $p := $enabled -}}
{{- $k := toString $p -}}
{{- if hasKey $ports $k -}}
{{- fail (printf "%s and %s are both %s: each port must be different" (get $ports $k) $n $k) -}}
{{- end -}}
{{- $_ := set $ports $k $n -}}
{{- end -}}
{{- if and $v.auth.passwordFile $v.auth.existingSecret -}}
{{- fail "auth: set either passwordFile or existingSecret, not both" -}}
{{- end -}}
{{- if and $v.cluster.secret (lt (len $v.cluster.secret) 16) -}}
{{- fail (printf "cluster.secret: %d characters is too short: flockd wants at least 16 (e.g. openssl rand -base64 32)" (len $v.cluster.secret)) -}}
{{- end -}}
{{- if and $v.cluster.secret $v.cluster.existingSecretName -}}
{{- fail "cluster: set either secret or existingSecretName, not both" -}}
{{- end -}}
{{- range $k := list "node_name" "cluster_listen" "cluster_advertise" "cluster_dns" "cluster_drain_timeout_ms" "data_dir" "metrics_listen" -}}
{{- if hasKey $v.config $k -}}
{{- fail (printf "config.%s: the chart sets this key itself (on each pod's command line or in its config)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k, $use := dict "listeners" "listeners.*" "password_file" "auth.passwordFile or auth.existingSecret" "acl_file" "auth.acl" "allow_anonymous" "auth.allowAnonymous" "log_level" "logLevel" "durability" "durability" "workers" "workers" "cluster_tls" "clusterTls.enabled" "cluster_certfile" "clusterTls" "cluster_keyfile" "clusterTls" "cluster_cafile" "clusterTls" "cluster_secret_file" "cluster.secret or cluster.existingSecretName" -}}
{{- if hasKey $v.config $k -}}
{{- fail (printf "config.%s: set it through the chart's value %s instead" $k $use) -}}
{{- end -}}
{{- end -}}
{{- range $k, $_ := $v.config -}}
{{- if or (eq $k "cluster") (hasPrefix "cluster." $k) -}}
{{- fail "config.cluster: write other cluster keys flat, e.g. config.cluster_failure_timeout_ms (the chart sets the cluster's address, DNS name and TLS files itself)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
flockd's worker threads. 0 means "one per core", and flockd counts the node's
cores, not the container's CPU limit: so 0 becomes the CPU limit, rounded up.
*/}}
{{- define "flock.workers" -}}
{{- $w := int .Values.workers -}}
{{- $limits := .Values.resources.limits | default dict -}}
{{- if and (eq $w 0) (hasKey $limits "cpu") -}}
{{- $cpu := toString $limits.cpu -}}
{{- if hasSuffix "m" $cpu -}}
{{- $w = int (ceil (divf (float64 (trimSuffix "m" $cpu)) 1000)) -}}
{{- else -}}
{{- $w = int (ceil (float64 $cpu)) -}}
{{- end -}}
{{- end -}}
{{- max $w 0 -}}
{{- end -}}

{{/* Mount points inside the container. */}}
{{- define "flock.paths" -}}
config: /etc/flock/flock.yaml
acl: /etc/flock/acl
authDir: /etc/flock/auth
tlsDir: /etc/flock/tls
clusterTlsDir: /etc/flock/cluster-tls
clusterSecretDir: /etc/flock/cluster-secret
data: /data
tmp: /tmp
{{- end -}}

{{/*
flockd's config file (docs/configuration.md) as YAML. The per-pod keys
(node_name, cluster_listen, cluster_advertise, cluster_dns) and the drain
timeout are flags in the StatefulSet's args.
*/}}
{{- define "flock.config" -}}
{{- $v := .Values -}}
{{- $p := include "flock.paths" . | fromYaml -}}
{{- $c := dict "data_dir" $p.data "metrics_listen" (printf "0.0.0.0:%d" (int $v.metrics.port)) "log_level" $v.logLevel "durability" $v.durability "workers" (int (include "flock.workers" .)) "allow_anonymous" (ternary true false (eq $v.auth.allowAnonymous true)) -}}
{{- $listeners := list -}}
{{- if $v.listeners.mqtt.enabled -}}
{{- $listeners = append $listeners (dict "address" (printf "0.0.0.0:%d" (int $v.listeners.mqtt.port))) -}}
{{- end -}}
{{- $tlsKeys := dict "certfile" (printf "%s/tls.crt" $p.tlsDir) "keyfile" (printf "%s/tls.key" $p.tlsDir) "tls_version" $v.tls.minVersion -}}
{{- if $v.tls.clientAuth -}}
{{- $_ := set $tlsKeys "cafile" (printf "%s/ca.crt" $p.tlsDir) -}}
{{- $_ := set $tlsKeys "require_certificate" true -}}
{{- if $v.tls.useIdentityAsUsername -}}
{{- $_ := set $tlsKeys "use_identity_as_username" true -}}
{{- end -}}
{{- end -}}
{{- if include "flock.mqttsOn" . -}}
{{- $listeners = append $listeners (merge (dict "address" (printf "mqtts://0.0.0.0:%d" (int $v.listeners.mqtts.port))) $tlsKeys) -}}
{{- end -}}
{{- if $v.listeners.ws.enabled -}}
{{- $listeners = append $listeners (dict "address" (printf "ws://0.0.0.0:%d%s" (int $v.listeners.ws.port) $v.listeners.ws.path)) -}}
{{- end -}}
{{- if include "flock.wssOn" . -}}
{{- $listeners = append $listeners (merge (dict "address" (printf "wss://0.0.0.0:%d%s" (int $v.listeners.wss.port) $v.listeners.wss.path)) $tlsKeys) -}}
{{- end -}}
{{- $_ := set $c "listeners" $listeners -}}
{{- if include "flock.hasPasswordFile" . -}}
{{- $_ := set $c "password_file" (printf "%s/%s" $p.authDir (include "flock.authSecretKey" .)) -}}
{{- end -}}
{{- if $v.auth.acl -}}
{{- $_ := set $c "acl_file" $p.acl -}}
{{- end -}}
{{- if $v.clusterTls.enabled -}}
{{- $_ := set $c "cluster_tls" true -}}
{{- $_ := set $c "cluster_certfile" (printf "%s/tls.crt" $p.clusterTlsDir) -}}
{{- $_ := set $c "cluster_keyfile" (printf "%s/tls.key" $p.clusterTlsDir) -}}
{{- $_ := set $c "cluster_cafile" (printf "%s/ca.crt" $p.clusterTlsDir) -}}
{{- else -}}
{{- $_ := set $c "cluster_tls" false -}}
{{- end -}}
{{- if include "flock.hasClusterSecret" . -}}
{{- $_ := set $c "cluster_secret_file" (printf "%s/%s" $p.clusterSecretDir (include "flock.clusterSecretKey" .)) -}}
{{- end -}}
{{- $c = mergeOverwrite $c (deepCopy $v.config) -}}
{{- toYaml $c -}}
{{- end -}}
