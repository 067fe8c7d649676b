"""Self-contained method projects (mmdet3d ``projects/`` style)."""
