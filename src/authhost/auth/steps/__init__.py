"""One module per pipeline step; ``build_pipeline`` in auth.factory names them for config."""
