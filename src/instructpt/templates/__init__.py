"""Templify: render synthesized chains into instruction-augmented pre-training text (SPEC §5).

``render_chain(chain, record_id=..., seed=...)`` turns a chain of ``(context, pairs)`` examples into one natural
document with patterns drawn from the project's own inventory (``inventory/*.yaml``: one file per pattern
family plus layout pieces). Rendering is pure and seeded by (seed, record id)::

    from instructpt.templates import render_chain
    doc = render_chain([(text, pairs)], record_id="doc-1", seed=0)
    print(doc.text, doc.layouts, doc.template_ids)
"""

from instructpt.templates.inventory import FAMILIES, Inventory, inventory_fingerprint, load_inventory
from instructpt.templates.render import (
    DEFAULT_LAYOUT_WEIGHTS,
    LAYOUTS,
    EmptyChainError,
    Rendered,
    TemplifyOptions,
    chain_rng,
    render_chain,
)

__all__ = [
    "DEFAULT_LAYOUT_WEIGHTS",
    "FAMILIES",
    "LAYOUTS",
    "EmptyChainError",
    "Inventory",
    "Rendered",
    "TemplifyOptions",
    "chain_rng",
    "inventory_fingerprint",
    "load_inventory",
    "render_chain",
]
