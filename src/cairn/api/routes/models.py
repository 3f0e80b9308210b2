"""The model registry: versions, files, cards, approvals, aliases and their history.

``{version}`` in a path is a number, ``latest``, ``@alias`` or ``@1.2.0``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from cairn.api.deps import ActorDep, AliasesDep, RegistryDep
from cairn.api.paths import version_ref
from cairn.api.route import ApiRoute
from cairn.api.streaming import RANGE_RESPONSES, blob_response
from cairn.auth import On, PrincipalDep, RunProjects, guard, require_refs
from cairn.domain.access import Role
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.errors import NotFound
from cairn.domain.models import ModelFile
from cairn.schemas.models import (
    AliasIn,
    AliasMoveOut,
    DecisionIn,
    ModelFileIn,
    ModelFilesOut,
    ModelInputIn,
    ModelVersionIn,
    ModelVersionOut,
    ReasonIn,
    RegisteredModelOut,
)

router = APIRouter(tags=["models"], route_class=ApiRoute)
_BASE = "/projects/{project}/models/{name}"


def _comment(body: DecisionIn | None) -> str | None:
    return body.comment if body is not None else None


@router.get(
    "/projects/{project}/models",
    response_model=list[RegisteredModelOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_models(project: str, registry: RegistryDep) -> list[RegisteredModelOut]:
    return [RegisteredModelOut.of(m) for m in registry.list_models(project)]


@router.get(_BASE, response_model=RegisteredModelOut, dependencies=[guard(On.PATH, Role.VIEWER)])
def get_model(project: str, name: str, registry: RegistryDep) -> RegisteredModelOut:
    """A registered model with its aliases and protected aliases."""
    return RegisteredModelOut.of(registry.get_model(name, project))


@router.post(
    _BASE + "/versions",
    response_model=ModelVersionOut,
    status_code=201,
    dependencies=[guard(On.PATH, Role.EDITOR)],
)
def register_version(
    project: str, name: str, body: ModelVersionIn, registry: RegistryDep, actor: ActorDep
) -> ModelVersionOut:
    """A new version from files already sent; its semver follows the rule unless ``bump``
    or ``semver`` says otherwise, and the reason is kept."""
    version = registry.register_version(
        project,
        name,
        [ModelFile(f.path, f.digest, f.size) for f in body.files],
        flavor=body.flavor,
        run_id=body.run_id,
        algorithm=body.algorithm,
        signature=body.signature,
        requirements=body.requirements,
        bump=body.bump,
        semver=body.semver,
        description=body.description,
        tags=body.tags,
        actor=actor,
    )
    return ModelVersionOut.of(version)


@router.get(
    _BASE + "/versions",
    response_model=list[ModelVersionOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_versions(project: str, name: str, registry: RegistryDep) -> list[ModelVersionOut]:
    """Every version, newest first."""
    return [ModelVersionOut.of(v) for v in registry.list_versions(name, project)]


@router.get(
    _BASE + "/versions/{version}",
    response_model=ModelVersionOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def get_version(project: str, name: str, version: str, registry: RegistryDep) -> ModelVersionOut:
    return ModelVersionOut.of(registry.resolve(version_ref(name, version), project))


@router.get(
    _BASE + "/versions/{version}/files",
    response_model=ModelFilesOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_files(project: str, name: str, version: str, registry: RegistryDep) -> ModelFilesOut:
    found, files = registry.files(version_ref(name, version), project)
    return ModelFilesOut(
        version=ModelVersionOut.of(found),
        files=[ModelFileIn(path=f.path, digest=f.digest, size=f.size) for f in files],
    )


@router.get(
    _BASE + "/versions/{version}/files/{path:path}",
    response_class=StreamingResponse,
    responses=RANGE_RESPONSES,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def download_file(
    project: str, name: str, version: str, path: str, request: Request, registry: RegistryDep
) -> Response:
    clean = normalize_artifact_path(path)
    found, files = registry.files(version_ref(name, version), project)
    item = next((f for f in files if f.path == clean), None)
    if item is None:
        raise NotFound(f"model version {found} has no file {clean!r}", details={"path": clean})
    return blob_response(
        request, registry.blobs.store, item.digest, item.size, "application/octet-stream"
    )


@router.get(_BASE + "/versions/{version}/card", dependencies=[guard(On.PATH, Role.VIEWER)])
def model_card(project: str, name: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    """The model card: source run, params, metrics, training data, git, environment,
    signature, approval, files."""
    return registry.model_card(version_ref(name, version), project)


@router.post(
    _BASE + "/versions/{version}/approve",
    response_model=ModelVersionOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def approve(
    project: str,
    name: str,
    version: str,
    registry: RegistryDep,
    actor: ActorDep,
    body: DecisionIn | None = None,
) -> ModelVersionOut:
    return ModelVersionOut.of(
        registry.approve(version_ref(name, version), _comment(body), project=project, actor=actor)
    )


@router.post(
    _BASE + "/versions/{version}/reject",
    response_model=ModelVersionOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def reject(
    project: str,
    name: str,
    version: str,
    registry: RegistryDep,
    actor: ActorDep,
    body: DecisionIn | None = None,
) -> ModelVersionOut:
    return ModelVersionOut.of(
        registry.reject(version_ref(name, version), _comment(body), project=project, actor=actor)
    )


@router.put(
    _BASE + "/aliases/{alias}",
    response_model=ModelVersionOut,
    dependencies=[guard(On.ALIAS, Role.EDITOR)],
)
def set_alias(
    project: str, name: str, alias: str, body: AliasIn, aliases: AliasesDep, actor: ActorDep
) -> ModelVersionOut:
    """Point the alias at a version; a protected alias takes approved versions only (409)."""
    moved = aliases.set_alias(
        name, alias, body.version, project=project, reason=body.reason, actor=actor
    )
    return ModelVersionOut.of(moved)


@router.delete(
    _BASE + "/aliases/{alias}", status_code=204, dependencies=[guard(On.ALIAS, Role.EDITOR)]
)
def delete_alias(
    project: str,
    name: str,
    alias: str,
    aliases: AliasesDep,
    actor: ActorDep,
    reason: str | None = None,
) -> Response:
    aliases.delete_alias(name, alias, project=project, reason=reason, actor=actor)
    return Response(status_code=204)


@router.get(
    _BASE + "/aliases/{alias}",
    response_model=ModelVersionOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def resolve_alias(
    project: str,
    name: str,
    alias: str,
    aliases: AliasesDep,
    at: Annotated[datetime | None, Query(description="When (ISO 8601); default now")] = None,
) -> ModelVersionOut:
    """The version the alias points to, or pointed to at ``at`` (404 when unset then)."""
    found = aliases.resolve_alias(name, alias, at=at, project=project)
    if found is None:
        raise NotFound(
            f"alias {alias!r} of {name!r} pointed to no version then",
            details={"model": name, "alias": alias},
        )
    return ModelVersionOut.of(found)


@router.get(
    _BASE + "/alias-history",
    response_model=list[AliasMoveOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def alias_history(
    project: str, name: str, aliases: AliasesDep, alias: str | None = None
) -> list[AliasMoveOut]:
    """Every move of one alias (or all of them), oldest first: from, to, who, when, why."""
    return [AliasMoveOut.of(m) for m in aliases.history(name, alias, project=project)]


@router.post(
    _BASE + "/aliases/{alias}/rollback",
    response_model=ModelVersionOut,
    dependencies=[guard(On.ALIAS, Role.EDITOR)],
)
def rollback(
    project: str,
    name: str,
    alias: str,
    aliases: AliasesDep,
    actor: ActorDep,
    body: ReasonIn | None = None,
) -> ModelVersionOut:
    """Move the alias back to its previous target (recorded like any move)."""
    reason = body.reason if body is not None else None
    moved = aliases.rollback(name, alias, project=project, reason=reason, actor=actor)
    return ModelVersionOut.of(moved)


@router.put(
    _BASE + "/protected-aliases/{alias}",
    response_model=RegisteredModelOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def protect_alias(
    project: str, name: str, alias: str, aliases: AliasesDep, actor: ActorDep
) -> RegisteredModelOut:
    """From now on the alias may point only to approved versions."""
    return RegisteredModelOut.of(aliases.protect(name, alias, True, project=project, actor=actor))


@router.delete(
    _BASE + "/protected-aliases/{alias}",
    response_model=RegisteredModelOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def unprotect_alias(
    project: str, name: str, alias: str, aliases: AliasesDep, actor: ActorDep
) -> RegisteredModelOut:
    return RegisteredModelOut.of(aliases.protect(name, alias, False, project=project, actor=actor))


@router.get("/projects/{project}/model-compare", dependencies=[guard(On.PATH, Role.VIEWER)])
def compare_versions(
    project: str,
    a: Annotated[str, Query(description="A model reference such as iris:2")],
    b: Annotated[str, Query(description="A model reference such as iris:3")],
    registry: RegistryDep,
    who: PrincipalDep,
) -> dict[str, Any]:
    """Params, metrics, training data and signature of two versions side by side."""
    require_refs(who, (a, b), project, Role.VIEWER)
    return registry.compare(a, b, project)


@router.post(
    "/runs/{run_id}/model-inputs",
    response_model=ModelVersionOut,
    status_code=201,
    dependencies=[guard(On.RUN, Role.EDITOR)],
)
def use_model(
    run_id: str,
    body: ModelInputIn,
    registry: RegistryDep,
    actor: ActorDep,
    who: PrincipalDep,
    request: Request,
) -> ModelVersionOut:
    """Record that a run used a model version (evaluation, a pipeline's next step)."""
    runs: RunProjects = request.app.state.run_projects
    require_refs(who, [body.model], runs.project(run_id), Role.VIEWER)
    return ModelVersionOut.of(registry.use_model(run_id, body.model, body.role, actor=actor))
