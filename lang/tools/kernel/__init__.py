"""The Jupyter kernel (docs/reference.md §15): the REPL's core (lang/tools/repl/core.py) behind Jupyter's protocol.

    display   a REPL Output as Jupyter display data: HTML tables, highlighted terms, SVG graphs, plots
    kernel    the ipykernel wrapper kernel: cells as REPL inputs, completion, inspection, is_complete
    install   `dl kernel install`: the kernelspec

Only `kernel` and `install` need the `[jupyter]` extra; they import it when they run.
"""
