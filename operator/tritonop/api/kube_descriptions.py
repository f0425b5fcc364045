"""``kubectl explain`` text for the Kubernetes types the spec passes through (``api/kube_types.py``).

Keyed by the type's name in the models' JSON Schema (``$defs``), then by property. The
types mirror upstream Kubernetes types, so the text condenses the upstream field docs
(core/v1, autoscaling/v2, gateway.networking.k8s.io/v1); a default named here is the one
Kubernetes applies to the child, not one the CRD applies. ``api/crd.py`` adds these where a
property has no description of its own, and fails on an entry that names nothing.
"""

from __future__ import annotations

_SELECTOR_VALUES = "Values to compare the label with: In and NotIn need at least one, Exists and DoesNotExist none."
_TARGET_TYPE = "What the target sets: Utilization (averageUtilization), Value (value) or AverageValue (averageValue)."
_POD_AFFINITY_REQUIRED = (
    "Terms every Triton pod must satisfy to be scheduled (all of them); not re-checked once the pod runs."
)
_POD_AFFINITY_PREFERRED = "Terms the scheduler prefers: a node scores the sum of the weights of the terms it satisfies."
_SCALING_RULES = (
    "Rules for scaling {direction}: stabilization window, policies and how the policies combine. "
    "Default (Kubernetes): {default}."
)

KUBE_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "KeySelector": {
        "name": "Name of the object (ConfigMap or Secret) in the InferenceService's namespace.",
        "key": "Key in that object's data whose value is used.",
        "optional": "true: start the container even if the object or key is missing. Default: false.",
    },
    "ObjectFieldSelector": {
        "apiVersion": "Version of the schema fieldPath is written in. Default: v1.",
        "fieldPath": "Pod field to read: metadata.name, metadata.namespace, metadata.uid, "
        "metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, "
        "status.hostIP(s) or status.podIP(s).",
    },
    "ResourceFieldSelector": {
        "containerName": "Container whose resource is read. Default: the Triton container.",
        "resource": "Resource to read: limits.cpu, limits.memory, requests.cpu, requests.memory, "
        "limits/requests.ephemeral-storage or hugepages-SIZE.",
        "divisor": "Unit the value is expressed in (a quantity: 1, 1m, 1Mi). Default: 1.",
    },
    "EnvVarSource": {
        "configMapKeyRef": "Take the value from a key of a ConfigMap.",
        "secretKeyRef": "Take the value from a key of a Secret.",
        "fieldRef": "Take the value from a field of the pod (downward API).",
        "resourceFieldRef": "Take the value from a resource limit or request of a container.",
    },
    "EnvVar": {
        "name": "Environment variable name.",
        "value": "Literal value; $(VAR) references to earlier variables are expanded. Exactly one of value "
        "and valueFrom is set.",
        "valueFrom": "Where the value comes from: exactly one of configMapKeyRef, secretKeyRef, fieldRef, "
        "resourceFieldRef.",
    },
    "Toleration": {
        "key": "Taint key the toleration matches. Empty (with operator Exists): every taint key.",
        "operator": "Exists (any value) or Equal (the value below). Default: Equal.",
        "value": "Taint value to match with operator Equal; empty with Exists.",
        "effect": "Taint effect to match: NoSchedule, PreferNoSchedule or NoExecute. Default: every effect.",
        "tolerationSeconds": "With effect NoExecute: seconds the pod stays bound after the taint appears. "
        "Default: forever.",
    },
    "LocalObjectReference": {
        "name": "Name of the Secret in the InferenceService's namespace.",
    },
    "LabelSelectorRequirement": {
        "key": "Label key the requirement applies to.",
        "operator": "How the label relates to values: In, NotIn, Exists or DoesNotExist.",
        "values": _SELECTOR_VALUES,
    },
    "LabelSelector": {
        "matchLabels": "Labels an object must have, key to value (each an In requirement with one value).",
        "matchExpressions": "Label requirements an object must all satisfy.",
    },
    "NodeSelectorRequirement": {
        "key": "Node label key the requirement applies to.",
        "operator": "How the label relates to values: In, NotIn, Exists, DoesNotExist, Gt or Lt.",
        "values": "Values to compare the label with: In and NotIn need at least one, Gt and Lt exactly one "
        "(an integer), Exists and DoesNotExist none.",
    },
    "NodeFieldSelectorRequirement": {
        "key": "Node field the requirement applies to: metadata.name.",
        "operator": "In or NotIn.",
        "values": "Exactly one node name.",
    },
    "NodeSelectorTerm": {
        "matchExpressions": "Requirements on node labels, all of which must hold.",
        "matchFields": "Requirements on node fields, all of which must hold.",
    },
    "NodeSelector": {
        "nodeSelectorTerms": "Node selector terms; a node matches when it matches any one of them.",
    },
    "PreferredSchedulingTerm": {
        "weight": "Weight added to a node's score when it matches preference; 1..100.",
        "preference": "Node selector term the node should match.",
    },
    "NodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": "Nodes a Triton pod may be scheduled on; not "
        "re-checked once the pod runs.",
        "preferredDuringSchedulingIgnoredDuringExecution": "Nodes the scheduler prefers: a node scores the "
        "sum of the weights of the terms it matches.",
    },
    "PodAffinityTerm": {
        "labelSelector": "Pods the term is about. Default: no pods.",
        "namespaceSelector": "Namespaces (by label) whose pods the term is about, in addition to namespaces. "
        "Empty selector ({}): every namespace.",
        "namespaces": "Namespaces whose pods the term is about. Default (with no namespaceSelector): "
        "the InferenceService's namespace.",
        "topologyKey": "Node label that defines the topology domain (e.g. kubernetes.io/hostname, "
        "topology.kubernetes.io/zone): co-located means on nodes with the same value.",
    },
    "WeightedPodAffinityTerm": {
        "weight": "Weight added to a node's score when it satisfies podAffinityTerm; 1..100.",
        "podAffinityTerm": "The pod affinity term.",
    },
    "PodAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": _POD_AFFINITY_REQUIRED,
        "preferredDuringSchedulingIgnoredDuringExecution": _POD_AFFINITY_PREFERRED,
    },
    "Affinity": {
        "nodeAffinity": "Which nodes Triton pods may, or prefer to, run on (by node labels and fields).",
        "podAffinity": "Run Triton pods in the same topology domain (node, zone) as the selected pods.",
        "podAntiAffinity": "Keep Triton pods out of topology domains (node, zone) that run the selected pods.",
    },
    "MetricTarget": {
        "type": _TARGET_TYPE,
        "averageUtilization": "Target average utilisation in percent of the pods' resource requests "
        "(type Utilization; Resource and ContainerResource metrics).",
        "averageValue": "Target value of the metric averaged over the pods, a quantity (type AverageValue).",
        "value": "Target value of the metric, a quantity (type Value).",
    },
    "MetricIdentifier": {
        "name": "Metric name as the metrics API serves it.",
        "selector": "Label selector narrowing the metric's series. Default: the metric name alone.",
    },
    "ResourceMetricSource": {
        "name": "Resource name: cpu or memory.",
        "target": "Target for the resource, averaged over the pods: Utilization or AverageValue.",
    },
    "ContainerResourceMetricSource": {
        "name": "Resource name: cpu or memory.",
        "container": "Container whose resource usage is measured (the Triton container is triton).",
        "target": "Target for the resource, averaged over the pods: Utilization or AverageValue.",
    },
    "PodsMetricSource": {
        "metric": "Per-pod metric (custom metrics API), averaged over the pods.",
        "target": "Target: AverageValue only.",
    },
    "CrossVersionObjectReference": {
        "apiVersion": "API version of the object.",
        "kind": "Kind of the object.",
        "name": "Name of the object, in the InferenceService's namespace.",
    },
    "ObjectMetricSource": {
        "describedObject": "The Kubernetes object the metric describes.",
        "metric": "Metric of that object (custom metrics API).",
        "target": "Target: Value or AverageValue.",
    },
    "ExternalMetricSource": {
        "metric": "Metric not tied to any Kubernetes object (external metrics API).",
        "target": "Target: Value or AverageValue.",
    },
    "MetricSpec": {
        "type": "Metric source: Resource, Pods, Object, External or ContainerResource; the field of the same "
        "name (resource, pods, object, external, containerResource) must be set, and no other.",
        "resource": "Resource metric (cpu, memory) of the pods, as the metrics server reports it.",
        "pods": "Custom metric of each pod, averaged.",
        "object": "Custom metric of one Kubernetes object.",
        "external": "External metric, from outside the cluster.",
        "containerResource": "Resource metric (cpu, memory) of one container of the pods.",
    },
    "HPAScalingPolicy": {
        "type": "Pods (a number of pods) or Percent (a percentage of the current replicas).",
        "value": "Amount of change the policy allows per period, in pods or percent (type).",
        "periodSeconds": "Window the policy holds for, in seconds; 1..1800.",
    },
    "HPAScalingRules": {
        "stabilizationWindowSeconds": "Seconds of past recommendations considered, so replicas do not flap; "
        "0..3600. Default (Kubernetes): 0 for scale-up, 300 for scale-down.",
        "selectPolicy": "Which policy applies: Max (the largest change), Min (the smallest) or Disabled "
        "(no scaling in this direction). Default (Kubernetes): Max.",
        "policies": "Allowed changes per period; selectPolicy picks between them.",
    },
    "HPABehavior": {
        "scaleUp": _SCALING_RULES.format(
            direction="up", default="no stabilization, the larger of 100% or 4 pods per 15s"
        ),
        "scaleDown": _SCALING_RULES.format(
            direction="down", default="a 300s stabilization window, up to 100% of the replicas per 15s"
        ),
    },
    "ParentReference": {
        "group": "API group of the parent. Default: gateway.networking.k8s.io.",
        "kind": "Kind of the parent. Default: Gateway.",
        "namespace": "Namespace of the parent. Default: the InferenceService's namespace.",
        "name": "Name of the parent (the Gateway).",
        "sectionName": "Listener of the Gateway to attach to. Default: every listener that allows the route.",
        "port": "Port of the Gateway's listeners to attach to (1..65535). Default: every port.",
    },
    "ProbeTuning": {
        "initialDelaySeconds": "Seconds after the container starts before the first probe, 0..3600. Default: 0.",
        "periodSeconds": "Seconds between probes, 1..3600.",
        "timeoutSeconds": "Seconds one probe may take before it counts as failed, 1..3600. Default: 5.",
        "failureThreshold": "Consecutive failures before the probe gives up (startup and liveness restart the "
        "container, readiness takes the pod out of its Service), 1..10000.",
    },
    "TritonProbes": {
        "startup": "Startup probe (GET /v2/health/live); the others wait until it passes. Default: every 10s, "
        "180 failures (30 minutes to fetch and load the model).",
        "readiness": "Readiness probe (GET /v2/health/ready). Default: every 5s, 3 failures.",
        "liveness": "Liveness probe (GET /v2/health/live). Default: every 10s, 3 failures.",
    },
    "SeccompProfile": {
        "type": "RuntimeDefault (the container runtime's profile), Localhost (a profile file on the node) or "
        "Unconfined (none; outside Pod Security restricted).",
        "localhostProfile": "With type Localhost: the profile's path relative to the kubelet's seccomp directory.",
    },
    "AppArmorProfile": {
        "type": "RuntimeDefault (the container runtime's profile), Localhost (a profile loaded on the node) or "
        "Unconfined (none; outside Pod Security restricted).",
        "localhostProfile": "With type Localhost: the name of the profile loaded on the node.",
    },
    "SELinuxOptions": {
        "user": "SELinux user label (outside Pod Security restricted).",
        "role": "SELinux role label (outside Pod Security restricted).",
        "type": "SELinux type label; restricted allows container_t, container_init_t, container_kvm_t and "
        "container_engine_t.",
        "level": "SELinux level label (e.g. s0:c123,c456; OpenShift assigns one per namespace).",
    },
    "Capabilities": {
        "add": "Linux capabilities to add (e.g. NET_BIND_SERVICE, the only one Pod Security restricted allows).",
        "drop": "Linux capabilities to drop; restricted needs ALL.",
    },
    "PodSecurityContext": {
        "runAsUser": "UID the containers' processes run as, unless a container says otherwise. Default "
        "(Kubernetes): the image's user.",
        "runAsGroup": "Primary GID of the containers' processes. Default (Kubernetes): the image's group.",
        "runAsNonRoot": "true: the kubelet refuses to start a container that would run as UID 0.",
        "fsGroup": "GID that owns the pod's volumes and is added to every container's groups.",
        "fsGroupChangePolicy": "When volume ownership is changed to fsGroup: Always or OnRootMismatch. "
        "Default (Kubernetes): Always.",
        "supplementalGroups": "Further GIDs added to every container's processes.",
        "seccompProfile": "Seccomp profile of every container that sets none; restricted needs RuntimeDefault "
        "or Localhost here or in every container.",
        "appArmorProfile": "AppArmor profile of every container that sets none.",
        "seLinuxOptions": "SELinux labels of every container that sets none.",
    },
    "SecurityContext": {
        "runAsUser": "UID the container's processes run as; restricted forbids 0. Default: the pod's.",
        "runAsGroup": "Primary GID of the container's processes. Default: the pod's.",
        "runAsNonRoot": "true: the kubelet refuses to start the container as UID 0. Default: the pod's.",
        "allowPrivilegeEscalation": "Whether a process may gain more privileges than its parent (setuid); "
        "restricted needs false.",
        "privileged": "Run with the host's devices and all capabilities; restricted forbids it. GPUs need no "
        "privilege: the device plugin hands them to the container.",
        "capabilities": "Linux capabilities to add and drop.",
        "readOnlyRootFilesystem": "Mount the container's root filesystem read-only.",
        "seccompProfile": "Seccomp profile of the container. Default: the pod's.",
        "appArmorProfile": "AppArmor profile of the container. Default: the pod's.",
        "seLinuxOptions": "SELinux labels of the container. Default: the pod's.",
    },
    "KeyToPath": {
        "key": "Key of the ConfigMap or Secret.",
        "path": "Relative file path the key is written to inside the volume.",
        "mode": "File mode bits, 0..511 (0777 octal). Default: defaultMode.",
    },
    "ConfigMapVolumeSource": {
        "name": "Name of the ConfigMap in the InferenceService's namespace.",
        "items": "Keys to project, each to a path. Default: every key, as a file of its name.",
        "defaultMode": "File mode bits of the files, 0..511 (0777 octal). Default (Kubernetes): 0644.",
        "optional": "true: start the pod even if the ConfigMap or a key is missing. Default: false.",
    },
    "SecretVolumeSource": {
        "secretName": "Name of the Secret in the InferenceService's namespace.",
        "items": "Keys to project, each to a path. Default: every key, as a file of its name.",
        "defaultMode": "File mode bits of the files, 0..511 (0777 octal). Default (Kubernetes): 0644.",
        "optional": "true: start the pod even if the Secret or a key is missing. Default: false.",
    },
    "EmptyDirVolumeSource": {
        "medium": "Memory for a tmpfs (counted against the containers' memory), empty for the node's disk.",
        "sizeLimit": "Most the volume may hold, a quantity (e.g. 1Gi). Default: no limit but the node's.",
    },
    "PersistentVolumeClaimVolumeSource": {
        "claimName": "Name of the PersistentVolumeClaim in the InferenceService's namespace.",
        "readOnly": "Mount the claim read-only. Default: false.",
    },
    "CSIVolumeSource": {
        "driver": "Name of the CSI driver (e.g. secrets-store.csi.k8s.io).",
        "readOnly": "Mount the volume read-only. Default: false.",
        "fsType": "Filesystem type, passed to the driver.",
        "volumeAttributes": "Driver-specific attributes.",
        "nodePublishSecretRef": "Secret with credentials passed to the driver.",
    },
    "Volume": {
        "name": "Volume name (a DNS label) that volumeMounts refer to; not dshm, tmp, model-repository or "
        "storage-credentials (the operator's own).",
        "emptyDir": "A scratch directory that lives as long as the pod.",
        "configMap": "The keys of a ConfigMap as files.",
        "secret": "The keys of a Secret as files.",
        "persistentVolumeClaim": "A PersistentVolumeClaim.",
        "csi": "A volume from a CSI driver (e.g. the Secrets Store CSI driver).",
    },
    "VolumeMount": {
        "name": "The volume to mount: one of triton.volumes.",
        "mountPath": "Absolute path in the container the volume is mounted at, without '.' or '..' segments.",
        "readOnly": "Mount read-only. Default: false.",
        "subPath": "Path inside the volume to mount instead of its root (e.g. one file of a ConfigMap). "
        "Default: the root.",
    },
    "Container": {
        "name": "Container name (a DNS label), unique in the pod; not triton or fetch-model.",
        "image": "Container image.",
        "imagePullPolicy": "Always, IfNotPresent or Never. Default (Kubernetes): Always for :latest and "
        "untagged images, else IfNotPresent.",
        "command": "Entrypoint, replacing the image's. Default: the image's.",
        "args": "Arguments to the entrypoint. Default: the image's.",
        "workingDir": "Working directory. Default: the image's.",
        "env": "Environment variables: each a name with a value or a valueFrom.",
        "volumeMounts": "Volumes to mount, each one of triton.volumes, at distinct paths.",
        "securityContext": "Security settings of this container. Default: the Triton container's "
        "(triton.securityContext, else the operator's restricted settings).",
    },
    "TopologySpreadConstraint": {
        "maxSkew": "Most the number of matching pods may differ between two topology domains, 1..1000.",
        "topologyKey": "Node label whose values are the domains (e.g. topology.kubernetes.io/zone, "
        "kubernetes.io/hostname).",
        "whenUnsatisfiable": "DoNotSchedule (keep the pod pending) or ScheduleAnyway (prefer, do not require).",
        "labelSelector": "Pods counted per domain. Default: the pods of the same revision.",
        "minDomains": "Fewest eligible domains; fewer count as skew against the pod (whenUnsatisfiable "
        "DoNotSchedule only), 1..1000. Default (Kubernetes): 1.",
        "nodeAffinityPolicy": "Honor (count only nodes the pod's nodeSelector and affinity allow) or Ignore. "
        "Default (Kubernetes): Honor.",
        "nodeTaintsPolicy": "Honor (count only nodes whose taints the pod tolerates) or Ignore. Default "
        "(Kubernetes): Ignore.",
    },
}
