{{/*
Names. Every object is named after the release (truncated for the 63-character limit of labels and
DNS names), so two releases in one cluster never collide on cluster-scoped objects such as ClusterRoles.
*/}}
{{- define "rds-csi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rds-csi.controllerName" -}}{{ include "rds-csi.fullname" . }}-controller{{- end -}}
{{- define "rds-csi.nodeName" -}}{{ include "rds-csi.fullname" . }}-node{{- end -}}

{{/* The Secret with the SSH private key and the RDS host key. */}}
{{- define "rds-csi.secretName" -}}
{{- .Values.rds.existingSecret | default (printf "%s-rds-credentials" (include "rds-csi.fullname" .)) -}}
{{- end -}}

{{/* The ConfigMap with the RDS connection settings that are not secret. */}}
{{- define "rds-csi.configName" -}}{{ include "rds-csi.fullname" . }}-rds-connection{{- end -}}

{{- define "rds-csi.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rds-csi
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (controller or node); never change them: selectors are immutable. */}}
{{- define "rds-csi.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "rds-csi.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* The kubelet's plugin directory of this driver, where the node plugin's socket lives. */}}
{{- define "rds-csi.pluginDir" -}}
{{- printf "%s/plugins/%s" (.Values.node.kubeletDir | trimSuffix "/") .Values.driverName -}}
{{- end -}}

{{/* A sidecar's liveness probe on its leader-election health endpoint: a sidecar that lost its API
connection while leading stops answering, and is restarted. The argument is the container's port name
(unique in the pod, at most 15 characters). */}}
{{- define "rds-csi.leaderElectionProbe" -}}
livenessProbe:
  httpGet:
    path: /healthz/leader-election
    port: {{ . }}
  initialDelaySeconds: 10
  timeoutSeconds: 10
  periodSeconds: 20
  failureThreshold: 3
{{- end -}}

{{- define "rds-csi.sidecarSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{/* More RDS boxes: the ConfigMap with the boxes file, and a box's Secret (its own, or one the chart makes). */}}
{{- define "rds-csi.boxesConfigName" -}}{{ include "rds-csi.fullname" . }}-rds-boxes{{- end -}}
{{- define "rds-csi.boxSecretName" -}}
{{- .box.existingSecret | default (printf "%s-box-%s" (include "rds-csi.fullname" .root) .box.name) -}}
{{- end -}}
