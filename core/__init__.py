"""Deepfake forensics core: decoding, faces, detector, analysis, explanations, charts, cases.

Nothing in this package imports Streamlit except `core.ui`, the app's glue package.
"""
__version__ = "0.1.0"
