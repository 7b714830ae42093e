"""tpod core: plain Python, no Streamlit and no Huey imports (enforced by tests/test_layering.py)."""
