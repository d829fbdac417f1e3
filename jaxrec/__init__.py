"""jaxrec: LLM-based recommendation in JAX/Flax.

Import direction (lowest first): errors/paths → data → llm / cf / multiscale → models → train → evaluate / index.
`jaxrec.metrics` imports nothing from jaxrec.
"""

__version__ = "0.1.0"
