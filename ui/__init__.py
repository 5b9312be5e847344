"""Streamlit-only helpers shared by the pages (the engine lives in resnet_core)."""
