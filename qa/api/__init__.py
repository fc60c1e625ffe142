"""HTTP interface: a FastAPI app built from settings by `create_app`."""
