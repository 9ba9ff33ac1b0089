"""dl: a small typed functional language with compositional reverse-mode AD.

The pipeline (lang/pipeline.py) strings the stages together:
parser -> desugar -> infer -> mono -> evaluator, with the transforms in
lang/transforms/ and the differentiation kernel in lang/ad.py.
"""

__version__ = "0.1.0"
