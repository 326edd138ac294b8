"""The Kubernetes manifests (docker-images/kubernetes/), checked offline: each object against
Kubernetes' own API schemas (kubernetes-validate, strict: an unknown field fails), then the
rules the product holds itself to: every container with resource requests and limits, probes,
a non-root security context, secrets only from Secrets, and no volume shared between
deployments."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tests.support import REPO

MANIFESTS = REPO / "docker-images" / "kubernetes"
KUBERNETES = "1.31.0"  # a version the schemas of kubernetes-validate hold, as clusters run today
#: Environment names that hold a secret: their value must come from a Secret.
SECRET_WORDS = ("PASSWORD", "SECRET", "DATABASE_URL", "PROXY_USERS", "TOKEN")


def documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


DOCS = documents()
DEPLOYMENTS = [(name, d) for name, d in DOCS if d["kind"] == "Deployment"]


@pytest.mark.parametrize(
    "name, doc", DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS]
)
def test_each_object_is_valid_for_kubernetes(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "ufo", name


def test_the_kustomization_lists_every_manifest_but_the_secrets_example():
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {
        "kustomization.yaml",
        "secrets.example.yaml",
    }
    assert sorted(listed) == sorted(files)


def test_the_validator_refuses_a_broken_object():
    [(_, deployment)] = [(n, d) for n, d in DEPLOYMENTS if d["metadata"]["name"] == "producto"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


@pytest.mark.parametrize(
    "name, doc", DEPLOYMENTS, ids=[d["metadata"]["name"] for _, d in DEPLOYMENTS]
)
def test_every_container_is_bounded_probed_and_unprivileged(name, doc):
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
    for container in pod["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) <= set(resources["limits"]), name
        assert "readinessProbe" in container and "livenessProbe" in container, name
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert container["image"].split(":")[1] == "0.1.0", "images pinned to the release tag"
        for env in container.get("env", []):
            if any(word in env["name"] for word in SECRET_WORDS):
                assert "secretKeyRef" in env.get("valueFrom", {}), f"{name}: {env['name']}"


def test_no_volume_is_shared_between_deployments_and_the_secrets_are_placeholders():
    claims: dict[str, str] = {}
    for _, doc in DEPLOYMENTS:
        for volume in doc["spec"]["template"]["spec"].get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                assert claim not in claims, (
                    f"{claim}: {claims[claim]} and {doc['metadata']['name']}"
                )
                claims[claim] = doc["metadata"]["name"]
    [(_, secret)] = [(n, d) for n, d in DOCS if d["kind"] == "Secret"]
    assert all("change-me" in value for value in secret["stringData"].values())


def test_only_the_proxy_is_reachable_from_outside_the_cluster():
    services = [d for _, d in DOCS if d["kind"] == "Service"]
    outside = [
        s["metadata"]["name"] for s in services if s["spec"].get("type", "ClusterIP") != "ClusterIP"
    ]
    assert outside == ["proxy"]
