{{/* Chart name, overridable. */}}
{{- define "tritonop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: "<release>-<chart>", or the release name when it already contains the chart name. */}}
{{- define "tritonop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tritonop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: only name and instance, because a Deployment's selector is immutable. */}}
{{- define "tritonop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tritonop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tritonop.labels" -}}
{{ include "tritonop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "tritonop.chart" . }}
{{- end -}}

{{- define "tritonop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tritonop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tritonop.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the operator secret Triton control-API keys derive from. */}}
{{- define "tritonop.apiKeySecretName" -}}
{{- default (printf "%s-api-key" (include "tritonop.fullname" .)) .Values.tritonApiKey.secretName -}}
{{- end -}}

{{- define "tritonop.replicas" -}}
{{- if .Values.ha.enabled -}}{{ .Values.ha.replicas }}{{- else -}}1{{- end -}}
{{- end -}}

{{/*
What the operator does inside each namespace it serves. Shared by the ClusterRole
(all namespaces) and the per-namespace Roles (watchNamespaces), so both modes grant
the same verbs. Keep in sync with tests/contract/chart/test_rbac.py.
*/}}
{{- define "tritonop.namespacedRules" -}}
# Watched by kopf; status written by tritonop; patched only to remove the finalizer that
# versions before the operator's own object loops added (kopf does that once per object).
- apiGroups: ["serving.tritonop.dev"]
  resources: ["inferenceservices"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["serving.tritonop.dev"]
  resources: ["inferenceservices/status"]
  verbs: ["patch"]
# Events on InferenceServices (core v1 API, as kopf posts them).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Children of an InferenceService: listed and watched into the operator's caches (reads come
# from memory; docs/architecture.md), server-side applied, deleted when a revision or
# provider goes. Creation is a server-side apply too, which the API server authorizes as
# `patch` and, because it creates, as `create` as well. `get` remains for the rare direct
# read (recovering a lost status; a kind whose CRD was installed after the operator started).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# One NetworkPolicy per InferenceService over its Triton pods (spec.networkPolicy).
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# A canary whose pods are not ready: ask the pods why (image pull, Triton's model load error);
# watched (tritonop's pods only, by label) so a pod's change wakes its InferenceService.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# rollout.strategy InPlace: a pod whose Triton stays not ready with its versions loaded (an
# unload that never finished) is evicted, honouring its PodDisruptionBudget.
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
# Each InferenceService's Triton control-API key Secret (NAME-triton-key): created, and
# server-side applied on resume; never read (no get, list or watch), never deleted
# (it goes with its InferenceService through its ownerReference).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* kopf discovers resources by scanning CustomResourceDefinitions, in every mode. */}}
{{- define "tritonop.crdScanRule" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}
