"""flowspec: Flow templates as data.

A plain library (no Django) that parses and validates template documents completely before
anything runs, and evaluates their paths, rules and projections for the engine. The language is
described in docs/template-language.md.
"""

from flowspec import renderable
from flowspec.checks import (
    declared_properties,
    document_version,
    field_path,
    input_errors,
    input_validator,
)
from flowspec.errors import NoChoiceMatched, SpecError, TemplateInvalid
from flowspec.model import (
    ERROR_NAMES,
    PRODUCTS,
    CallbackState,
    CallbackTimeout,
    Catch,
    ChoiceBranch,
    ChoiceState,
    RequestState,
    Retry,
    State,
    Template,
)
from flowspec.paths import (
    MISSING,
    Path,
    PathError,
    is_path,
    parse_path,
    project,
    render_value,
    resolve_path,
)
from flowspec.rules import evaluate_rule
from flowspec.validation import load_template, stored_template, validate_document

__all__ = [
    "declared_properties",
    "document_version",
    "ERROR_NAMES",
    "MISSING",
    "PRODUCTS",
    "CallbackState",
    "CallbackTimeout",
    "Catch",
    "ChoiceBranch",
    "ChoiceState",
    "NoChoiceMatched",
    "Path",
    "PathError",
    "RequestState",
    "Retry",
    "SpecError",
    "State",
    "Template",
    "TemplateInvalid",
    "evaluate_rule",
    "field_path",
    "input_errors",
    "input_validator",
    "is_path",
    "load_template",
    "parse_path",
    "project",
    "renderable",
    "render_value",
    "stored_template",
    "resolve_path",
    "validate_document",
]
