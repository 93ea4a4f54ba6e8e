"""Static checks of the deployment files (issue 9): the Dockerfile, the compose file with
MinIO and the Kubernetes Indexed Job parse, agree with each other (image, ports, env,
grace periods, user, cache paths) and with jitsynth's real settings loader, so a typo
in an env var name or a grace period shorter than the SIGTERM drain fails here, not in
a cluster. No Docker daemon or cluster is needed (``kubectl kustomize`` is used when
present)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from stream.config import SEED_STRIDE, Settings, load_settings
from tests.conftest import ROOT

K8S = ROOT / "infra" / "k8s"
GRACE_DEFAULT = Settings.model_fields["grace_period"].default
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def docker_env() -> dict[str, str]:
    env = {}
    for word, rest in final_stage():
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def compose() -> dict[str, Any]:
    [doc] = load_yaml(ROOT / "infra" / "docker-compose.yml")
    return doc


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def k8s_job() -> dict[str, Any]:
    [job] = [d for d in load_yaml(K8S / "job.yaml") if d["kind"] == "Job"]
    return job


def kustomization() -> dict[str, Any]:
    [doc] = load_yaml(K8S / "kustomization.yaml")
    return doc


def job_container() -> dict[str, Any]:
    [container] = k8s_job()["spec"]["template"]["spec"]["containers"]
    return container


def seconds(value: str | int) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(value))
    assert match and any(match.groups()), f"unparsed duration {value!r}"
    return int(match[1] or 0) * 60 + int(match[2] or 0) if not str(value).isdigit() else int(value)


# -- Dockerfile -------------------------------------------------------------------------------------

def test_dockerfile_is_multi_stage_non_root_exec_form_without_secrets() -> None:
    instructions = dockerfile()
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2 and " AS build" in stages[0]
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in final_stage())
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    [entry] = [rest for word, rest in instructions if word == "ENTRYPOINT"]
    assert json.loads(entry) == ["jitsynth"]  # exec form: SIGTERM reaches the producer, not a shell
    for word, rest in instructions:
        if word in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(SECRET|PASSWORD|ACCESS_KEY|TOKEN)", rest, re.I), (word, rest)
    assert "--no-deps -r requirements.lock" in " ".join(rest for word, rest in instructions if word == "RUN")


def test_image_installs_a_complete_exact_lock_of_the_declared_dependencies() -> None:
    lock = {}
    for line in (ROOT / "infra" / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.]+", version), f"not pinned exactly: {line}"
            lock[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in PROJECT["dependencies"]:
        req = Requirement(dep)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in lock, f"{req.name} missing from infra/requirements.lock"
        assert req.specifier.contains(lock[name]), f"lock has {name}=={lock[name]}, pyproject wants {req.specifier}"
    # Closed under requirements (checked against what is installed here; `pip check` in the
    # image build checks it again): `pip install --no-deps` would silently miss a package.
    import importlib.metadata as md

    for name in lock:
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            extra_ok = name == "aiobotocore" and req.marker is not None and req.marker.evaluate({"extra": "boto3"})
            if req.marker is None or req.marker.evaluate({"extra": ""}) or extra_ok:
                assert re.sub(r"[-_.]+", "-", req.name).lower() in lock, f"{name} needs {req.name}, not in the lock"


def test_dockerignore_keeps_what_the_dockerfile_copies_and_nothing_else() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "**"  # deny by default: no datasets, caches or .env files in the context
    included = {r[1:] for r in rules if r.startswith("!")}
    for word, rest in dockerfile():
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert source in included, f"COPY {source} is excluded by .dockerignore"
                assert (ROOT / source).exists(), source


# -- docker compose with MinIO -----------------------------------------------------------------------

def test_compose_runs_minio_then_bucket_then_producer() -> None:
    services = compose()["services"]
    assert set(services) == {"minio", "create-bucket", "jitsynth"}
    minio, bucket, producer = services["minio"], services["create-bucket"], services["jitsynth"]
    assert "minio/minio:" in minio["image"] and minio["healthcheck"]["test"][:2] == ["CMD", "mc"]
    assert bucket["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert "mc mb --ignore-existing" in bucket["command"][0] and bucket["restart"] == "no"
    assert producer["depends_on"] == {"create-bucket": {"condition": "service_completed_successfully"}}
    assert (ROOT / "infra" / producer["build"]["context"] / producer["build"]["dockerfile"]).resolve() == \
        ROOT / "Dockerfile"
    assert producer["init"] is True
    assert seconds(producer["stop_grace_period"]) > GRACE_DEFAULT + 10


def test_compose_ports_endpoint_credentials_and_bucket_agree() -> None:
    services = compose()["services"]
    minio, bucket, producer = services["minio"], services["create-bucket"], services["jitsynth"]
    api_port = minio["command"][minio["command"].index("--address") + 1].lstrip(":")
    assert f"127.0.0.1:{api_port}:{api_port}" in minio["ports"]  # loopback only
    env = {k: interpolate(str(v)) for k, v in producer["environment"].items()}
    assert env["AWS_ENDPOINT_URL"] == f"http://minio:{api_port}"
    assert env["AWS_ACCESS_KEY_ID"] == interpolate(minio["environment"]["MINIO_ROOT_USER"])
    assert env["AWS_SECRET_ACCESS_KEY"] == interpolate(minio["environment"]["MINIO_ROOT_PASSWORD"])
    assert f"http://minio:{api_port}" in bucket["command"][0]
    out = interpolate(producer["command"][producer["command"].index("--out") + 1])
    assert out == f"s3://{interpolate(bucket['environment']['JITSYNTH_BUCKET'])}/dataset"
    metrics = env["JITSYNTH_METRICS_PORT"]
    assert f"127.0.0.1:{metrics}:{metrics}" in producer["ports"]
    assert f"EXPOSE {metrics}" in [f"{w} {r}" for w, r in final_stage()]
    assert any(v.split(":")[1] == docker_env()["XDG_CACHE_HOME"] for v in producer["volumes"])


def test_compose_producer_settings_are_accepted_by_jitsynth(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = compose()["services"]["jitsynth"]
    for key, value in producer["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value)))
    command = [interpolate(str(a)) for a in producer["command"]]
    assert command[0] == "run"
    flags = dict(zip(command[1::2], command[2::2]))
    settings = load_settings({k.removeprefix("--").replace("-", "_"): v for k, v in flags.items()})
    assert settings.producer == "0" and settings.seed_start == 0 and settings.out.startswith("s3://")
    assert settings.endpoint_url == "http://minio:9000" and settings.metrics_host == "0.0.0.0"


# -- Kubernetes Indexed Job ------------------------------------------------------------------------

def test_k8s_files_parse_and_the_secret_is_only_an_example() -> None:
    for path in K8S.glob("*.yaml"):
        assert load_yaml(path), path
    kust = kustomization()
    assert kust["resources"] == ["job.yaml"]  # never the example Secret
    [secret] = load_yaml(K8S / "secret.example.yaml")
    assert secret["kind"] == "Secret" and set(secret["stringData"].values()) == {"REPLACE_ME"}


def test_indexed_job_drains_restarts_and_takes_its_producer_from_the_index() -> None:
    job = k8s_job()
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    assert pod["restartPolicy"] == "Never"  # per-index backoff requires it (see the API rules test)
    container = job_container()
    env = {e["name"]: e for e in container["env"]}
    grace = float(env["JITSYNTH_GRACE_PERIOD"]["value"]) if "JITSYNTH_GRACE_PERIOD" in env else GRACE_DEFAULT
    assert pod["terminationGracePeriodSeconds"] > max(grace, GRACE_DEFAULT) + 10
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    [secret] = load_yaml(K8S / "secret.example.yaml")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": key} and key in secret["stringData"]
    assert container["args"] == ["run"]
    assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"]


def test_job_image_user_ports_and_cache_match_the_dockerfile_and_compose() -> None:
    container, pod = job_container(), k8s_job()["spec"]["template"]["spec"]
    name, _, tag = container["image"].partition(":")
    compose_image = interpolate(compose()["services"]["jitsynth"]["image"])
    assert compose_image == container["image"] == f"jitsynth:{PROJECT['version']}"
    [image] = kustomization()["images"]
    assert image["name"] == name and image["newTag"] == tag
    uid = [r for w, r in final_stage() if w == "USER"][-1].split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True and str(pod["securityContext"]["runAsUser"]) == uid
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert docker_env()["XDG_CACHE_HOME"] in mounts and "/tmp" in mounts  # writable despite read-only root
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert [p["containerPort"] for p in container["ports"]] == [int(env["JITSYNTH_METRICS_PORT"])]
    assert env["JITSYNTH_METRICS_HOST"] == "0.0.0.0"


def test_kustomize_patch_scales_completions_and_parallelism_together() -> None:
    [patch] = kustomization()["patches"]
    ops = {op["path"]: op["value"] for op in yaml.safe_load(patch["patch"])}
    assert set(ops) == {"/spec/completions", "/spec/parallelism"}
    assert ops["/spec/completions"] == ops["/spec/parallelism"]
    assert patch["target"]["kind"] == "Job" and patch["target"]["name"] == k8s_job()["metadata"]["name"]


@pytest.mark.parametrize("index", [0, 2])
def test_pod_environment_is_accepted_by_jitsynth(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pod's `jitsynth run` sees: the ConfigMap, the fixed env, the index and a Secret."""
    [generator] = kustomization()["configMapGenerator"]
    for literal in generator["literals"]:
        key, _, value = literal.partition("=")
        monkeypatch.setenv(key, value)
    for item in job_container()["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-secret")
    settings = load_settings({})
    assert settings.producer == str(index) and settings.seed_start == index * SEED_STRIDE
    assert settings.out.startswith("s3://") and settings.count and settings.count > 0
    cpus = int(job_container()["resources"]["requests"]["cpu"])
    assert settings.workers == cpus and settings.endpoint_url and settings.metrics_port == 9108


def test_kustomize_build_renders_the_job_with_its_config_map() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed; the YAML checks above still ran")
    rendered = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True)
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered.stdout)}
    assert set(docs) == {"ConfigMap", "Job"}
    [container] = docs["Job"]["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": docs["ConfigMap"]["metadata"]["name"]}}]
    assert docs["ConfigMap"]["metadata"]["name"].startswith("jitsynth-config-")  # hashed: a change rolls pods


def test_job_follows_the_cross_field_rules_the_api_server_enforces() -> None:
    """No API server runs here, so the Job's cross-field validation rules that apply to what
    the manifest uses are encoded from the Kubernetes batch/v1 API reference (JobSpec) and
    the Job docs ("Backoff limit per index", "Pod failure policy"); kubectl apply would
    reject a manifest that breaks one. The previous manifest broke the first two."""
    job = k8s_job()
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    container = job_container()
    # JobSpec.backoffLimitPerIndex: "can only be specified when the Job's completionMode=Indexed,
    # and the Pod's restart policy is Never".
    if "backoffLimitPerIndex" in spec:
        assert spec["completionMode"] == "Indexed" and pod["restartPolicy"] == "Never"
        assert spec["backoffLimitPerIndex"] >= 0
    # JobSpec.podFailurePolicy: "can only be used when the pod template's restartPolicy is Never".
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        assert pod["restartPolicy"] == "Never"
        names = {c["name"] for c in pod["containers"]}
        for rule in policy["rules"]:
            # one of onExitCodes / onPodConditions; FailIndex needs backoffLimitPerIndex
            assert ("onExitCodes" in rule) != ("onPodConditions" in rule), rule
            assert rule["action"] in ("FailJob", "FailIndex", "Ignore", "Count")
            if rule["action"] == "FailIndex":
                assert "backoffLimitPerIndex" in spec
            codes = rule.get("onExitCodes")
            if codes is not None:
                assert codes["operator"] in ("In", "NotIn") and codes.get("containerName", container["name"]) in names
                assert codes["values"] and len(set(codes["values"])) == len(codes["values"]) and (
                    codes["operator"] == "NotIn" or 0 not in codes["values"])  # "In" may not list 0
    # A Job's pod template: restartPolicy OnFailure or Never, never Always (the default).
    assert pod.get("restartPolicy") in ("OnFailure", "Never")
    # maxFailedIndexes needs backoffLimitPerIndex and may not exceed completions.
    if "maxFailedIndexes" in spec:
        assert "backoffLimitPerIndex" in spec and spec["maxFailedIndexes"] <= spec["completions"]
    # Indexed Jobs: completions must be set (the index range), parallelism no more useful than that.
    assert spec["completions"] >= 1 and 1 <= spec["parallelism"] <= spec["completions"]
    # Pod security: runAsNonRoot needs a non-zero runAsUser (else the kubelet refuses to start a
    # root image).
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
