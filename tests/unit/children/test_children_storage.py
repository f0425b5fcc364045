"""storage_for: one StorageMount per storageUri scheme, and how each reaches the Triton pod."""

from __future__ import annotations

import pytest

from tritonop.api.models import ModelSource
from tritonop.children import BuildError, IsvcRef, build_revision, revision_of
from tritonop.children.storage import MODEL_MOUNT, storage_for
from tritonop.config import OperatorConfig


def source(uri: str, secret: str | None = None) -> ModelSource:
    return ModelSource(storage_uri=uri, storage_secret_name=secret)


@pytest.mark.parametrize("uri", ["s3://bucket/repo", "as://account/container/repo", "gs://bucket/repo"])
def test_object_storage_is_read_by_triton_natively(uri: str, config: OperatorConfig) -> None:
    mount = storage_for(source(uri), config)
    assert mount.repository == uri
    assert (mount.volumes, mount.volume_mounts, mount.env, mount.env_from, mount.init_containers) == ([],) * 5


@pytest.mark.parametrize("uri", ["s3://bucket/repo", "as://account/container/repo"])
def test_s3_and_azure_credentials_come_from_the_secret_as_env(uri: str, config: OperatorConfig) -> None:
    mount = storage_for(source(uri, "creds"), config)
    assert mount.env_from == [{"secretRef": {"name": "creds"}}]
    assert mount.volumes == [] and mount.env == []


def test_gcs_credentials_are_a_key_file_mounted_from_the_secret(config: OperatorConfig) -> None:
    mount = storage_for(source("gs://bucket/repo", "gcp-key"), config)
    assert mount.volumes == [{"name": "storage-credentials", "secret": {"secretName": "gcp-key"}}]
    assert mount.volume_mounts == [
        {"name": "storage-credentials", "mountPath": "/var/run/secrets/tritonop/storage", "readOnly": True}
    ]
    assert mount.env == [
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/run/secrets/tritonop/storage/credentials.json"}
    ]
    assert mount.env_from == []


@pytest.mark.parametrize(
    "uri, repository",
    [
        ("pvc://model-store/repositories/llm", "/mnt/models/repositories/llm"),
        ("pvc://model-store", "/mnt/models"),
        ("pvc://model-store/", "/mnt/models"),
    ],
)
def test_pvc_is_mounted_read_only_and_the_sub_path_served(uri: str, repository: str, config: OperatorConfig) -> None:
    mount = storage_for(source(uri), config)
    assert mount.repository == repository
    assert mount.volumes == [
        {"name": "model-repository", "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True}}
    ]
    assert mount.volume_mounts == [{"name": "model-repository", "mountPath": MODEL_MOUNT, "readOnly": True}]


@pytest.mark.parametrize(
    "uri, extract",
    [
        ("https://example.com/m/repo.tar.gz", "tar -xzf /mnt/models/.archive -C /mnt/models"),
        ("http://example.com/m/repo.TGZ?sig=abc", "tar -xzf /mnt/models/.archive -C /mnt/models"),
        ("https://example.com/m/repo.zip", "unzip -q -o /mnt/models/.archive -d /mnt/models"),
    ],
)
def test_archive_is_fetched_by_an_init_container_into_an_empty_dir(uri: str, extract: str) -> None:
    mount = storage_for(source(uri), OperatorConfig(init_image="registry.local/fetch:1"))
    assert mount.repository == MODEL_MOUNT
    assert mount.volumes == [{"name": "model-repository", "emptyDir": {}}]
    assert mount.volume_mounts == [{"name": "model-repository", "mountPath": MODEL_MOUNT, "readOnly": True}]
    (fetch,) = mount.init_containers
    assert fetch["image"] == "registry.local/fetch:1"
    assert fetch["env"] == [{"name": "MODEL_ARCHIVE_URL", "value": uri}]
    script = fetch["command"][-1]
    assert extract in script
    assert uri not in script  # the URL reaches the shell only as an env var
    assert fetch["volumeMounts"] == [{"name": "model-repository", "mountPath": MODEL_MOUNT, "readOnly": False}]
    security = fetch["securityContext"]
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}


def test_file_uri_is_a_read_only_host_path(config: OperatorConfig) -> None:
    mount = storage_for(source("file:///var/lib/models/"), config)
    assert mount.repository == MODEL_MOUNT
    assert mount.volumes == [{"name": "model-repository", "hostPath": {"path": "/var/lib/models", "type": "Directory"}}]
    assert mount.volume_mounts == [{"name": "model-repository", "mountPath": MODEL_MOUNT, "readOnly": True}]


@pytest.mark.parametrize(
    "uri, secret, reason",
    [
        ("ftp://host/repo", None, "UnsupportedStorageUri"),
        ("https://example.com/repo/", None, "UnsupportedStorageUri"),
        ("pvc://Bad_Claim/repo", None, "InvalidStorageUri"),
        ("pvc://claim/../etc", None, "InvalidStorageUri"),
        ("file://relative/path", None, "InvalidStorageUri"),
        ("file:///", None, "InvalidStorageUri"),
        ("pvc://claim/repo", "creds", "UnsupportedStorageSecret"),
    ],
)
def test_unbuildable_storage_is_a_build_error(
    uri: str, secret: str | None, reason: str, config: OperatorConfig
) -> None:
    # model_construct: an old CRD may admit URIs the current models would reject.
    model = ModelSource.model_construct(storage_uri=uri, storage_secret_name=secret)
    with pytest.raises(BuildError) as raised:
        storage_for(model, config)
    assert raised.value.reason == reason
    assert "\n" not in str(raised.value)


def test_deployment_serves_the_storage_repository(ref: IsvcRef, make_spec, config: OperatorConfig) -> None:
    spec = make_spec(model={"storageUri": "pvc://store/repo", "name": "m"})
    deployment = build_revision(ref, spec, revision_of(spec), config)[0]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--model-repository=/mnt/models/repo" in container["args"]
    assert {"name": "model-repository", "mountPath": MODEL_MOUNT, "readOnly": True} in container["volumeMounts"]
    assert {"name": "model-repository", "persistentVolumeClaim": {"claimName": "store", "readOnly": True}} in pod[
        "volumes"
    ]
