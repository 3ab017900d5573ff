"""The deployment files (Dockerfile, compose.yaml, deploy/kubernetes) agree with the service they
deploy: settings that exist, commands and options the CLI has, probe paths the app serves, and a
KEDA query that counts the real queue on real PostgreSQL. (Images are not built here: no registry.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from seqdream.api.app import create_app
from seqdream.config import Settings
from seqdream.db import Database, migrate
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from support.postgres import empty_postgres, needs_postgres

ROOT = Path(__file__).parent.parent
KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


def documents() -> list[dict]:
    found = [yaml.safe_load((ROOT / "compose.yaml").read_text())]
    for path in KUBERNETES:
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def kube(kind: str, name: str) -> dict:
    return next(doc for doc in documents()[1:] if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_every_setting_named_exists() -> None:
    text_all = "\n".join(path.read_text() for path in [ROOT / "Dockerfile", ROOT / "compose.yaml", *KUBERNETES])
    names = set(re.findall(r"\bSEQDREAM_[A-Z0-9_]+", text_all))
    assert {"SEQDREAM_DATABASE_URL", "SEQDREAM_STORAGE_URL", "SEQDREAM_DATA_DIR"} <= names
    assert not {name for name in names if name.removeprefix("SEQDREAM_").lower() not in Settings.model_fields}


@pytest.mark.slow
def test_every_command_line_is_one_the_cli_takes() -> None:
    compose = documents()[0]
    commands = [
        service["command"] for service in compose["services"].values() if "seqdream" in str(service.get("image", ""))
    ]
    commands += [kube("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"]
                 for name in ("seqdream-api", "seqdream-worker")]  # fmt: skip
    assert ["serve", "--workers", "0"] in commands
    assert ["worker", "--metrics-port", "9100", "--metrics-host", "0.0.0.0"] in commands
    for command in commands:
        result = subprocess.run([sys.executable, "-m", "seqdream.cli.main", *command, "--help"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, (command, result.stderr)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["seqdream"]' in dockerfile and 'CMD ["serve"]' in dockerfile
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        assert all((ROOT / part).exists() for part in source.split()), source
    pin = re.search(r"^torch==\S+", (ROOT / "constraints.txt").read_text(), re.M)
    assert pin is not None and "grep -E '^torch==' constraints.txt" in dockerfile


def test_probes_point_at_routes_the_app_serves(tmp_path: Path) -> None:
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    paths = set(schema["paths"])
    api = kube("Deployment", "seqdream-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready" in paths
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live" in paths
    worker = kube("Deployment", "seqdream-worker")["spec"]["template"]["spec"]
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["terminationGracePeriodSeconds"] > int(
        kube("ConfigMap", "seqdream")["data"]["SEQDREAM_SHUTDOWN_GRACE_S"]
    )


@needs_postgres
def test_the_keda_query_counts_work_in_flight_on_real_postgres() -> None:
    scaled = kube("ScaledObject", "seqdream-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "seqdream-worker"
    (trigger,) = scaled["spec"]["triggers"]
    db = Database(empty_postgres())
    migrate.upgrade(db)
    store = JobStore(db)
    ids = [store.create(model="m", request=JobRequest(prompt="p"), seed=i, api_key_id=None).id for i in range(6)]
    store.claim("w")  # one processing
    for job_id in ids[4:]:  # two finished
        store.delete(job_id)
    with db.engine.connect() as connection:
        assert connection.execute(text(trigger["metadata"]["query"])).scalar() == 4


def kube_documents() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in KUBERNETES for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    """Offline, strict (unknown fields are errors), against a recent Kubernetes release; KEDA's custom
    resources have no schema there and are checked by hand below."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = 0
    for _path, doc in kube_documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, "1.30", strict=True)
        checked += 1
    assert checked >= 6
    broken = dict(kube("Deployment", "seqdream-api"), spec={"replicas": "two"})
    with pytest.raises(kubernetes_validate.ValidationError):  # the validator does catch mistakes
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_secrets_loaded_by_pods_hold_only_environment_variable_names() -> None:
    loaded = {
        ref["secretRef"]["name"]
        for name in ("seqdream-api", "seqdream-worker")
        for ref in kube("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        if "secretRef" in ref
    }
    assert "seqdream-keda" not in loaded  # KEDA's connection string reaches no pod
    for name in loaded:
        keys = kube("Secret", name)["stringData"]
        assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) for key in keys), (name, keys)
    auth = kube("TriggerAuthentication", "seqdream-postgres")["spec"]["secretTargetRef"][0]
    assert auth["key"] in kube("Secret", auth["name"])["stringData"]


def test_pods_run_unprivileged_and_the_model_cache_survives_scaling_to_zero() -> None:
    for name in ("seqdream-api", "seqdream-worker"):
        pod = kube("Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        container = pod["containers"][0]["securityContext"]
        assert container["allowPrivilegeEscalation"] is False and container["readOnlyRootFilesystem"] is True
        assert {"/tmp", "/data"} <= {mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]}
    worker = kube("Deployment", "seqdream-worker")["spec"]["template"]["spec"]
    cache = next(volume for volume in worker["volumes"] if volume["name"] == "model-cache")
    assert (
        cache["persistentVolumeClaim"]["claimName"]
        == kube("PersistentVolumeClaim", "seqdream-model-cache")["metadata"]["name"]
    )
    env = {item["name"]: item["value"] for item in worker["containers"][0]["env"]}
    assert env["HF_HOME"] == "/models"
    assert worker["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_the_image_and_compose_fit_every_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'HEALTHCHECK --interval=15s --timeout=5s --start-period=120s CMD ["seqdream", "health"]' in dockerfile
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "ARG " not in final_stage and "COPY src" not in final_stage  # no build args, no second source copy
    grace = int(re.search(r"SEQDREAM_SHUTDOWN_GRACE_S=(\d+)", final_stage).group(1))  # type: ignore[union-attr]
    assert grace < 10  # inside docker stop's default timeout
    compose = (ROOT / "compose.yaml").read_text()
    assert "${TORCH_INDEX:-" in compose and "Compose v2" in compose
    services = yaml.safe_load(compose)["services"]
    assert all(":" in service["image"] for service in services.values() if "image" in service)  # pinned tags
    for name in ("api", "worker"):
        stop = int(services[name]["stop_grace_period"].rstrip("s"))
        assert stop > int(yaml.safe_load(compose)["x-seqdream"]["environment"]["SEQDREAM_SHUTDOWN_GRACE_S"])
