"""Static checks of the deployment files (issue 9): the Dockerfile, the compose file with
MinIO and the Kubernetes Indexed Job parse, agree with each other (image, ports, env,
grace periods, user, cache paths) and with jitsynth's real settings loader, so a typo
in an env var name or a grace period shorter than the SIGTERM drain fails here, not in
a cluster. No Docker daemon or cluster is needed (``kubectl kustomize`` is used when
present)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from stream.config import SEED_STRIDE, Settings, load_settings
from tests.conftest import ROOT, cli_env

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


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> tuple[set[str], set[str]]:
    """([project] dependencies and all they require, transitively; those of them not installed
    here). From installed metadata, markers evaluated for this interpreter, a requirement's
    extras followed (aioboto3 needs aiobotocore[boto3]); pyproject's own optional extras
    (`data`, `test`) are not followed: the image leaves them out."""
    import importlib.metadata as md

    closure: set[tuple[str, frozenset[str]]] = set()
    absent: set[str] = set()
    todo = [Requirement(dep) for dep in PROJECT["dependencies"]]
    while todo:
        req = todo.pop()
        key = (_normal(req.name), frozenset(req.extras))
        if key in closure:
            continue
        closure.add(key)
        try:
            requires = md.requires(key[0]) or []
        except md.PackageNotFoundError:
            absent.add(key[0])
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                todo.append(sub)
    return {name for name, _ in closure}, absent


def test_image_installs_exactly_the_pinned_closure_of_the_runtime_dependencies() -> None:
    lock = {}
    for line in (ROOT / "infra" / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.]+", version), f"not pinned exactly: {line}"
            lock[_normal(name)] = version
    for dep in PROJECT["dependencies"]:
        req = Requirement(dep)
        name = _normal(req.name)
        assert name in lock, f"{req.name} missing from infra/requirements.lock"
        assert req.specifier.contains(lock[name]), f"lock has {name}=={lock[name]}, pyproject wants {req.specifier}"
    # Closed under requirements (checked against what is installed here; `pip check` in the
    # image build checks it again): `pip install --no-deps` would silently miss a package.
    # And nothing more: a package no runtime dependency needs (the `data` extra's) only
    # makes the image bigger.
    closure, absent = runtime_closure()
    assert closure - set(lock) == set(), "required at run time, not in infra/requirements.lock"
    assert set(lock) - closure == set(), (f"in infra/requirements.lock, but no [project] dependency needs it "
                                          f"(not installed here, so not followed: {sorted(absent)})")


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


def test_the_image_wheel_ships_every_module_and_data_file(tmp_path: Path) -> None:
    """The image installs jitsynth from the wheel pyproject.toml builds, while tests here import
    the source tree, so a module the build leaves out is missing only in the image (a fixed
    list of top-level packages once left out synth.gen.families: those kernels failed in every
    container). Built from a copy of exactly what the Dockerfile copies."""
    context = tmp_path / "context"
    context.mkdir()
    for word, rest in dockerfile():
        if word == "COPY" and not rest.startswith("--from") and "requirements.lock" not in rest:
            for source in rest.split()[:-1]:
                copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy
                copy(ROOT / source, context / source)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                           str(context)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("jitsynth-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for room in ("synth", "stream", "sinks")
               for p in (ROOT / room).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert "synth/gen/families/__init__.py" in sources
    assert sources - shipped == set(), "not in the wheel (pyproject.toml [tool.setuptools])"


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
    """No API server runs here (none is packaged for this machine: Debian has etcd but no
    kube-apiserver, PyPI neither), so the cross-field validation rules that apply to what the
    manifest uses are encoded from the Kubernetes batch/v1 and core/v1 API reference; kubectl
    apply would reject a manifest that breaks one. Field shapes (names, types, enums, required
    fields) are checked against the OpenAPI schemas in the next test. Sources:
    [JobSpec] https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/
    [PFP] https://kubernetes.io/docs/tasks/job/pod-failure-policy (and PodFailurePolicyRule,
          PodFailurePolicyOnExitCodesRequirement in [JobSpec])
    [Indexed] https://kubernetes.io/docs/tasks/job/indexed-parallel-processing-static
    The previous manifest broke the first two (restartPolicy OnFailure)."""
    job = k8s_job()
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    container = job_container()
    # [JobSpec] backoffLimitPerIndex: "It can only be set when Job's completionMode=Indexed, and
    # the Pod's restart policy is Never."
    if "backoffLimitPerIndex" in spec:
        assert spec["completionMode"] == "Indexed" and pod["restartPolicy"] == "Never"
        assert spec["backoffLimitPerIndex"] >= 0
    # [JobSpec] podFailurePolicy: "This field cannot be used in combination with restartPolicy=OnFailure".
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        assert pod["restartPolicy"] == "Never"
        # [JobSpec] podReplacementPolicy: "When using podFailurePolicy, Failed is the the only allowed value."
        assert spec.get("podReplacementPolicy", "Failed") == "Failed"
        names = {c["name"] for c in pod["containers"]}
        assert 1 <= len(policy["rules"]) <= 20  # PodFailurePolicy.rules: "At most 20 elements are allowed."
        for rule in policy["rules"]:
            # PodFailurePolicyRule: "One of onExitCodes and onPodConditions, but not both".
            assert ("onExitCodes" in rule) != ("onPodConditions" in rule), rule
            assert rule["action"] in ("FailJob", "FailIndex", "Ignore", "Count")
            # KEP-3850 (https://www.kubernetes.dev/resources/keps/3850/) and the Job docs: FailIndex
            # fails the index, so the API server accepts it only with backoffLimitPerIndex set.
            if rule["action"] == "FailIndex":
                assert "backoffLimitPerIndex" in spec
            codes = rule.get("onExitCodes")
            if codes is not None:
                # containerName "should match one the container or initContainer names"; operator In
                # or NotIn; values: "must be ordered and must not contain duplicates. Value '0'
                # cannot be used for the In operator. At least one element is required. At most
                # 255 elements are allowed."
                assert codes["operator"] in ("In", "NotIn") and codes.get("containerName", container["name"]) in names
                values = codes["values"]
                assert 1 <= len(values) <= 255 and values == sorted(set(values))
                assert codes["operator"] == "NotIn" or 0 not in values
            for condition in rule.get("onPodConditions", []):
                # PodFailurePolicyOnPodConditionsPattern: type required, status True/False/Unknown;
                # at most 20 patterns per rule.
                assert condition["type"] and condition.get("status", "True") in ("True", "False", "Unknown")
            assert len(rule.get("onPodConditions", [])) <= 20
    # A Job's pod template: restartPolicy OnFailure or Never, never Always (the Pod default).
    assert pod.get("restartPolicy") in ("OnFailure", "Never")
    # [JobSpec] maxFailedIndexes: "can only be set when backoffLimitPerIndex is set. It can be null
    # or up to completions."
    if "maxFailedIndexes" in spec:
        assert "backoffLimitPerIndex" in spec and spec["maxFailedIndexes"] <= spec["completions"]
    # [JobSpec] completionMode Indexed: ".spec.completions must be specified and .spec.parallelism
    # must be less than or equal to 10^5". (parallelism <= completions is ours: more is idle.)
    assert spec["completions"] >= 1 and 1 <= spec["parallelism"] <= min(spec["completions"], 10**5)
    # core/v1 ResourceRequirements (ValidateResourceRequirements): a request above its limit is
    # rejected ("must be less than or equal to cpu limit").
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    for resource in requests.keys() & limits.keys():
        assert quantity(requests[resource]) <= quantity(limits[resource]), resource
    # core/v1 names: a container name is a DNS_LABEL; a port name an IANA_SVC_NAME (<= 15
    # lowercase letters, digits and '-', at least one letter), unique within the pod.
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", container["name"])
    port_names = [p["name"] for p in container.get("ports", []) if "name" in p]
    assert len(set(port_names)) == len(port_names)
    for name in port_names:
        assert len(name) <= 15 and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and re.search("[a-z]", name)
    # SecurityContext.runAsNonRoot: "the Kubelet will validate the image at runtime to ensure that
    # it does not run as UID 0 (root) and fail to start the container if it does". It can only
    # verify a numeric user (kubernetes/kubernetes#56503: "container has runAsNonRoot and image has
    # non-numeric user ..., cannot verify user is non-root"): the pod sets a non-zero runAsUser
    # and the image's USER is numeric too, so the image also passes where runAsUser is dropped.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    image_user = [r for w, r in final_stage() if w == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", image_user), f"USER {image_user} must be a numeric uid[:gid]"


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity ("4", "500m", "3Gi", "1G") as a number."""
    suffixes = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    assert match, f"unparsed quantity {value!r}"
    return float(match[1]) * suffixes[match[2] or ""]


def test_pod_template_meets_the_restricted_pod_security_standard() -> None:
    """A namespace labelled pod-security.kubernetes.io/enforce=restricted admits only pods that
    meet the Restricted profile: https://kubernetes.io/docs/concepts/security/pod-security-standards
    (each control below is one row of its Baseline / Restricted tables)."""
    pod = k8s_job()["spec"]["template"]["spec"]
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))  # host namespaces
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= allowed_volumes, volume  # volume types
    pod_context = pod.get("securityContext", {})
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container.get("securityContext", {})
        assert not context.get("privileged")  # privileged containers
        assert not any(p.get("hostPort") for p in container.get("ports", []))  # host ports
        assert context.get("allowPrivilegeEscalation") is False  # privilege escalation
        # running as non-root (and not as uid 0)
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True
        assert context.get("runAsUser", pod_context.get("runAsUser")) != 0
        # seccomp: RuntimeDefault or Localhost, on the pod or every container
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost")
        # capabilities: drop ALL, add at most NET_BIND_SERVICE
        capabilities = context.get("capabilities", {})
        assert "ALL" in capabilities.get("drop", []) and set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"}


# Backoff limit per index is beta (on by default) from Kubernetes 1.29, the oldest release this
# Job can run on; the newest is the latest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.29", "latest"]


def k8s_resources() -> list[dict[str, Any]]:
    """What `kubectl apply -k` sends (rendered by kubectl when present) plus the example Secret."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        resources = load_yaml(K8S / "job.yaml")
    else:
        rendered = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60,
                                  check=True)
        resources = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    return resources + load_yaml(K8S / "secret.example.yaml")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_kubernetes_openapi_schemas(version: str) -> None:
    """Field names, types, enums and required fields against the Kubernetes OpenAPI schemas
    (kubernetes-validate, strict: an unknown or misspelt field fails). The schemas of
    Kubernetes < 1.35 require onPodConditions[].status, which the API server defaults."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.latest_version() if version == "latest" else version
    for resource in k8s_resources():
        kubernetes_validate.validate(resource, version, strict=True)
    # The check can fail: a misspelt field in a copy of the Job is rejected.
    job = k8s_job()
    job["spec"]["backoffLimitPerIndx"] = job["spec"].pop("backoffLimitPerIndex")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, version, strict=True)


# -- container smoke run (infra/smoke.sh) ------------------------------------------------------------

SMOKE = ROOT / "infra" / "smoke.sh"


def test_smoke_script_rejects_bad_options_in_one_line() -> None:
    for args in (["--count"], ["--count", "x"], ["--count", "5"], ["--frobnicate"]):
        proc = subprocess.run(["bash", str(SMOKE), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith("smoke: ") and proc.stderr.count("\n") == 1, proc


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("podman") is None or os.environ.get("JITSYNTH_CONTAINER_SMOKE") != "1",
                    reason="builds the image and runs containers: needs podman and JITSYNTH_CONTAINER_SMOKE=1")
def test_container_smoke_two_producers_killed_and_stopped_mid_run() -> None:
    """infra/smoke.sh end to end: image build (layers reused), SeaweedFS, two producer
    containers, SIGKILL and SIGTERM mid-shard, restarts, dedup / verify / read in the image.
    The script checks every step and exits non-zero on the first failure."""
    proc = subprocess.run(["bash", str(SMOKE)], capture_output=True, text=True, timeout=3600,
                          env=cli_env({"PYTHON": sys.executable}))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for phase in ("build", "server", "produce", "dedup", "verify", "read"):
        assert re.search(rf"^smoke: phase {phase}: [\d.]+ s$", proc.stdout, re.M), phase
    assert "exited 3; starting it again" in proc.stdout and "(exit 137)" in proc.stdout
    [(records, unique)] = re.findall(r"^smoke: read (\d+) records, (\d+) unique ids", proc.stdout, re.M)
    assert records == unique and int(records) > 0
