{{/* Shared names and labels of the meshmedic chart. Names are fixed (one install per cluster, as the
kustomize set): the sidecars and docs refer to them. */}}
{{- define "meshmedic.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "meshmedic.labels" -}}
app.kubernetes.io/name: meshmedic
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: meshmedic-{{ .Chart.Version }}
{{- end -}}

{{- define "meshmedic.webhookSelector" -}}
app.kubernetes.io/name: meshmedic
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "meshmedic.controlSelector" -}}
app.kubernetes.io/name: meshmedic
app.kubernetes.io/component: xds
{{- end -}}

{{/* The gossip keyring Secret's name: the given one, or the chart's. */}}
{{- define "meshmedic.gossipSecret" -}}
{{ .Values.gossip.existingSecret | default "meshmedic-gossip-keys" }}
{{- end -}}

{{/* The one xDS/configSources address every consumer uses. */}}
{{- define "meshmedic.xdsAddress" -}}
meshmedic-xds.{{ .Release.Namespace }}.svc:{{ .Values.control.xdsPort }}
{{- end -}}

{{/* The gossip seed: SRV records of the headless Service in front of the control pods. */}}
{{- define "meshmedic.gossipSeed" -}}
dns+srv://_gossip._udp.meshmedic-gossip.{{ .Release.Namespace }}.svc.cluster.local
{{- end -}}

{{/* The gossip section every sidecar and the control server share (listen/advertise come per pod). */}}
{{- define "meshmedic.gossipConfig" -}}
enabled: true
join:
  - {{ include "meshmedic.gossipSeed" . }}
{{- if .Values.gossip.encryption }}
keysFile: /etc/meshmedic/gossip-keys
{{- end }}
{{- end -}}

{{/* The keyring: given keys, the keys of the Secret already installed (kept on upgrade), or a new key. */}}
{{- define "meshmedic.gossipKeyData" -}}
{{- if .Values.gossip.keys }}
{{- range $i, $k := .Values.gossip.keys }}
key-{{ printf "%02d" $i }}: {{ $k | b64enc }}
{{- end }}
{{- else }}
{{- $existing := dict }}
{{- range $ns := prepend .Values.mesh.namespaces .Release.Namespace }}
{{- if not $existing.data }}{{- $existing = lookup "v1" "Secret" $ns "meshmedic-gossip-keys" }}{{- end }}
{{- end }}
{{- if $existing.data }}
{{- toYaml $existing.data }}
{{- else }}
key-00: {{ randBytes 32 | b64enc }}
{{- end }}
{{- end }}
{{- end -}}
