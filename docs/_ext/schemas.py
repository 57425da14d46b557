"""``.. pyrl-schemas::``: the schema of every op in torch.ops.pyrl, read from the dispatcher at
build time (so the page cannot drift from the code)."""

import torch
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import pyrl  # noqa: F401  (registers the ops)


class Schemas(SphinxDirective):
    def run(self):
        schemas = sorted(
            str(s) for s in torch._C._jit_get_all_schemas() if s.name.startswith("pyrl::")
        )
        return [nodes.literal_block("\n".join(schemas), "\n".join(schemas), language="text")]


def setup(app):
    app.add_directive("pyrl-schemas", Schemas)
    return {"parallel_read_safe": True}
