"""Forms from JSON Schema: a callback state's `input` schema and `ui` hints as a Django form.

Staff never type JSON. `SchemaForm` turns an input schema into a tree of nodes (fields, fieldsets,
repeatable rows) whose answer is exactly the JSON that Update Run must receive: integers stay
integers, `0` and `false` are kept, an empty optional field is left out (or sent as null where the
schema allows null), dates keep their format.

How the tree is built:
- `flowspec.renderable.shape` decides how each node is rendered; publication refuses whatever it
  calls unrenderable, and a node that slipped through anyway (a version stored before the check)
  falls back to a JSON textarea that is validated the same way.
- Conditionals (`if`/`then`/`else`, `allOf`, `dependentRequired`, `dependentSchemas`, a `oneOf`
  told apart by a const property) are applied to the answer as it stands: each object is built
  from its *effective* schema, recomputed from the values typed so far until it settles. A field
  that the current answer switches off is not in the tree, so it is neither rendered nor read
  from the request: a stale hidden value can never be sent.
- Field names are the JSON path with `.` between parts (`diagnoses.0.code`); a `.` or `~` inside
  a property name is escaped as `~1`/`~0` (as in JSON Pointer), so names never collide. Control
  parameters (`diagnoses~rows`, `~action`, `~part`, `~form`, `~reading`) contain a bare `~` that
  no field name has.
- A string marked `x-signature: true` is the signed-in person's name (`signer`): shown
  read-only, and whatever a request posts for it is replaced by that name before anything reads
  or keeps it.

Validation: Django's fields parse what was typed (numbers, dates) first; then the assembled JSON
goes through `flowspec.input_validator` (Draft 2020-12 with formats) as the final word, and every
error lands on its field (by path), on its fieldset, or on the form, in plain words.
"""

from reviewqueue.schema_forms.fields import EMPTY, SIGNATURE, field_name, html_id
from reviewqueue.schema_forms.form import (
    ACTION,
    FIELDS,
    PART,
    READING,
    SchemaForm,
    apply_action,
    build_form,
    initial_answer,
    plain_message,
    reading_of,
    schema_errors,
    signed_data,
)
from reviewqueue.schema_forms.tree import START, ArrayNode, FieldNode, FormSpec, Node, ObjectNode

__all__ = [
    "ACTION",
    "EMPTY",
    "FIELDS",
    "PART",
    "START",
    "READING",
    "SIGNATURE",
    "ArrayNode",
    "FieldNode",
    "FormSpec",
    "Node",
    "ObjectNode",
    "SchemaForm",
    "apply_action",
    "build_form",
    "field_name",
    "html_id",
    "initial_answer",
    "plain_message",
    "reading_of",
    "schema_errors",
    "signed_data",
]
