"""Distillation losses."""
from .pointdistiller_loss import PointDistillerLoss, bev_rows

__all__ = ['PointDistillerLoss', 'bev_rows']
