"""opsloop: close the loop of machine learning in production.

Layers (lower never imports higher): ``data``, ``detect``, ``analysis``, ``learn`` (compute);
``reports``; ``store``, ``tracking``, ``registry`` (state); ``serving``, ``monitoring``
(runtime); ``server``, ``ui``, ``cli`` (surfaces). ``datasets`` generates the data the rest
is tested and demonstrated on.

>>> import opsloop
>>> opsloop.__version__
'0.1.0'
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
