"""Smaller3D project: MinkUNet distillation (see README.md)."""
