"""calgan_sklearn: deep models of calcium imaging data as scikit-learn estimators."""

__version__ = "0.1.0"

__all__ = ["__version__"]
