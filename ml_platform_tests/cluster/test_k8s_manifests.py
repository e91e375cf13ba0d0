"""deploy/k8s, Kubernetes on paper: every manifest is valid for the Kubernetes API (kubernetes-validate's bundled
schemas, strict: a misspelled field fails), the instance in its ConfigMap is valid for Dagster and dagster-k8s at the
pinned release, and the pieces name each other consistently (services, config maps, the volume, the image)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from ml_platform import names

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="the cluster extra (kubernetes-validate, dagster-k8s) is not installed")
dagster_k8s = pytest.importorskip("dagster_k8s", reason="the cluster extra (dagster-k8s) is not installed")

pytestmark = [pytest.mark.cluster]

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still in the managed clouds' standard support in 2026
NAMESPACE = "ml-platform"


def _documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _applied() -> dict[tuple[str, str], dict]:
    """The objects `kubectl apply -k deploy/k8s` would create, by (kind, name)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for document in _documents(K8S / resource):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in objects, f"{resource}: {key} is defined twice"
            objects[key] = document
    return objects


def _pod_specs(objects: dict) -> dict[str, dict]:
    return {name: document["spec"]["template"]["spec"] for (kind, name), document in objects.items()
            if kind == "Deployment"}


def _instance() -> dict:
    return yaml.safe_load(_applied()[("ConfigMap", "ml-platform-instance")]["data"]["dagster.yaml"])


def test_the_kustomization_applies_every_manifest_of_the_folder_and_only_the_example_secret_is_left_out():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secret.example.yaml"}
    assert kustomization["namespace"] == NAMESPACE


@pytest.mark.parametrize("manifest", sorted(path.name for path in K8S.glob("*.yaml")
                                            if path.name != "kustomization.yaml"))
def test_every_document_is_valid_for_the_kubernetes_api(manifest):
    documents = _documents(K8S / manifest)
    assert documents, manifest
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE, (manifest, document["metadata"])


def test_the_validator_refuses_a_misspelled_field():
    """The check above can fail: strict validation names a field Kubernetes does not know."""
    deployment = _applied()[("Deployment", "ml-platform-dask-workers")]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_instance_is_valid_for_dagster_and_its_run_launcher_for_dagster_k8s(tmp_path):
    from dagster._config import process_config
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    instance = _instance()
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError naming the field when it is not valid
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({**instance, "concurrency": {"runz": {}}}))
    with pytest.raises(DagsterInvalidConfigError, match="runz"):
        dagster_instance_config(str(tmp_path))
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "ML_PLATFORM_POSTGRES_URL"}

    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(dagster_k8s.K8sRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    broken = process_config(dagster_k8s.K8sRunLauncher.config_type(), {**launcher["config"], "job_namespacee": "x"})
    assert not broken.success


def test_the_pieces_name_each_other():
    objects = _applied()
    config = _instance()["run_launcher"]["config"]
    environment = objects[("ConfigMap", "ml-platform-env")]["data"]
    secret = _documents(K8S / "secret.example.yaml")[0]

    # the run launcher's Jobs get the same instance, environment, secret, account and volume as the pods here
    assert config["job_namespace"] == NAMESPACE and config["instance_config_map"] == "ml-platform-instance"
    assert all(("ConfigMap", name) in objects for name in config["env_config_maps"])
    assert config["env_secrets"] == [secret["metadata"]["name"]]
    assert ("ServiceAccount", config["service_account_name"]) in objects
    assert config["dagster_home"] == environment["DAGSTER_HOME"]
    claims = {volume["persistentVolumeClaim"]["claimName"] for volume in config["volumes"]}
    assert claims == {"ml-platform-data"} and ("PersistentVolumeClaim", "ml-platform-data") in objects
    assert {mount["mountPath"] for mount in config["volume_mounts"]} == {environment["ML_PLATFORM_DATA"]}

    # the variables the platform reads, and the secret that holds the instance's URL and the store's keys
    assert names.FEATURE_TABLES_VARIABLE in environment and environment["ML_PLATFORM_FEATURE_TABLES"].startswith("s3://")
    assert set(secret["stringData"]) == {names.REGISTRY_VARIABLE, "ML_PLATFORM_POSTGRES_URL", "AWS_ACCESS_KEY_ID",
                                         "AWS_SECRET_ACCESS_KEY"}
    assert secret["stringData"]["ML_PLATFORM_POSTGRES_URL"].startswith("postgresql+psycopg2://")
    assert names.ARTIFACTS_VARIABLE in environment and environment[names.ARTIFACTS_VARIABLE].startswith("s3://")

    # the dask address is the scheduler's Service, the workspace's gRPC server is the code location's Service
    def service_port(name: str) -> int:
        return objects[("Service", name)]["spec"]["ports"][0]["port"]

    assert environment["ML_PLATFORM_DASK_ADDRESS"] == \
        f"tcp://ml-platform-dask-scheduler:{service_port('ml-platform-dask-scheduler')}"
    grpc = yaml.safe_load(objects[("ConfigMap", "ml-platform-workspace")]["data"]["workspace.yaml"])
    grpc = grpc["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("ml-platform-code", service_port("ml-platform-code"))

    # every Service selects the pods of one Deployment, on a port a container of it opens
    pods = {name: document["spec"]["template"] for (kind, name), document in objects.items() if kind == "Deployment"}
    for (kind, name), service in objects.items():
        if kind != "Service":
            continue
        selected = [deployment for deployment, template in pods.items()
                    if service["spec"]["selector"].items() <= template["metadata"]["labels"].items()]
        assert len(selected) == 1, (name, selected)
        opened = {port["containerPort"] for container in pods[selected[0]]["spec"]["containers"]
                  for port in container.get("ports", [])}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= opened, name


def test_every_pod_runs_the_one_image_and_refers_only_to_objects_that_exist():
    objects = _applied()
    images = set()
    for name, pod in _pod_specs(objects).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        if "serviceAccountName" in pod:
            assert ("ServiceAccount", pod["serviceAccountName"]) in objects, name
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in objects, (name, volume)
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in objects
        for container in pod["containers"]:
            images.add(container["image"])
            assert {mount["name"] for mount in container.get("volumeMounts", [])} <= set(volumes), name
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in objects, name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] == "ml-platform-secrets", name
            for variable in container.get("env", []):
                if variable["name"] == "DAGSTER_CURRENT_IMAGE":
                    images.add(variable["value"])
    assert len(images) == 1, images
    dockerfile = (K8S / "Dockerfile").read_text()
    assert f"-t {images.pop()} ." in dockerfile and "'.[cluster]'" in dockerfile and "COPY model_specs" in dockerfile


def test_the_commands_name_the_platform_s_module_and_the_mounted_files():
    pods = _pod_specs(_applied())
    code = pods["ml-platform-code"]["containers"][0]["command"]
    assert code[:3] == ["dagster", "code-server", "start"] and code[code.index("-m") + 1] == "ml_platform.definitions"
    for name in ("ml-platform-webserver", "ml-platform-daemon"):
        command = pods[name]["containers"][0]["command"]
        workspace = Path(command[command.index("-w") + 1])
        mounts = {mount["mountPath"] for mount in pods[name]["containers"][0]["volumeMounts"]}
        assert str(workspace.parent) in mounts, (name, shlex.join(command))
    worker = pods["ml-platform-dask-workers"]["containers"][0]["command"]
    assert worker[:3] == ["python", "-m", "distributed.cli.dask_worker"] and "--nthreads" in worker
    assert worker[3] == _applied()[("ConfigMap", "ml-platform-env")]["data"]["ML_PLATFORM_DASK_ADDRESS"]
