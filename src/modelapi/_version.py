"""The package version, in a module of its own so internal modules never import the facade."""

# A constant, not importlib.metadata: reading the installed metadata costs tens of milliseconds
# at every cold start. pyproject.toml takes the package version from here.
__version__ = "0.1.0"
