"""The spec: what git declares, read from YAML files into typed, validated values with file:line.

Concepts:

- a **spec directory** holds any number of YAML files; each is a :class:`SpecFile` with
  ``functions`` (aliases pinned to versions, weights, a managed environment), ``rest_apis``
  (stages and their variables, API versions, clones) and ``domains`` (base path mappings);
- **loading** (:func:`load_spec`) reads them within limits, validates each against the models
  of :mod:`controller.spec.schema`, merges them into one :class:`Spec`, checks references
  across files, and expands API versions into the aliases and stage variables they are made of;
- every **problem** is collected with its file, line and field (:class:`SpecProblem`), so a
  bad spec is refused whole, each mistake on one line, and nothing is applied;
- :func:`json_schema` is the same rules for editors and CI (``pointsman schema``);
- :mod:`controller.spec.changes` compares two specs: what a pull request edits in git.

Modules: ``schema`` (models, name rules, the JSON schema), ``reading`` (finding and reading files,
YAML with line numbers, limits), ``declared`` (:class:`Spec`, :class:`SpecProblem`), ``load``
(the pipeline from a directory to a :class:`Spec`), ``changes`` (spec diff).
"""

from __future__ import annotations

from controller.spec.changes import (
    SpecChange,
    SpecDiffError,
    export_base,
    flatten,
    head_commit,
    spec_changes,
)
from controller.spec.declared import (
    Declared,
    Spec,
    SpecInvalid,
    SpecProblem,
)
from controller.spec.load import (
    load_spec,
)
from controller.spec.reading import (
    MAX_DEPTH,
    MAX_DIR_ENTRIES,
    MAX_FILE_BYTES,
    MAX_FILE_NODES,
    MAX_FILES,
    MAX_NUMBER_CHARS,
    MAX_RESOURCES,
    MAX_SPEC_NODES,
    MAX_TOTAL_BYTES,
    spec_files,
)
from controller.spec.schema import (
    HTTP_METHODS,
    LATEST,
    MAX_ENVIRONMENT_BYTES,
    MAX_SSM_NAME,
    AliasName,
    AliasSpec,
    BasePath,
    CatalogueEntry,
    DomainSpec,
    EnvironmentEntry,
    EnvironmentName,
    EnvironmentValue,
    FunctionName,
    FunctionSpec,
    MappingSpec,
    RestApiSpec,
    SpecFile,
    SsmReference,
    StageName,
    StageSpec,
    VariableName,
    VariableValue,
    VersionName,
    VersionRoute,
    VersionsSpec,
    VersionText,
    json_schema,
)

__all__ = [
    "SpecProblem",
    "SpecInvalid",
    "Declared",
    "Spec",
    "LATEST",
    "AliasName",
    "StageName",
    "VariableName",
    "BasePath",
    "FunctionName",
    "VersionText",
    "VariableValue",
    "AliasSpec",
    "MAX_ENVIRONMENT_BYTES",
    "EnvironmentName",
    "EnvironmentValue",
    "MAX_SSM_NAME",
    "SsmReference",
    "EnvironmentEntry",
    "FunctionSpec",
    "StageSpec",
    "HTTP_METHODS",
    "VersionName",
    "VersionRoute",
    "CatalogueEntry",
    "VersionsSpec",
    "RestApiSpec",
    "MappingSpec",
    "DomainSpec",
    "SpecFile",
    "json_schema",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_FILES",
    "MAX_DIR_ENTRIES",
    "MAX_RESOURCES",
    "MAX_DEPTH",
    "MAX_FILE_NODES",
    "MAX_SPEC_NODES",
    "MAX_NUMBER_CHARS",
    "spec_files",
    "load_spec",
    "SpecDiffError",
    "SpecChange",
    "flatten",
    "spec_changes",
    "export_base",
    "head_commit",
]
