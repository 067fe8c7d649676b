"""Distillation losses."""
from .baselines import (ATLoss, CRDLoss, FitNetsLoss, FKDLoss, LogitKDLoss,
                        OFDLoss, SESSDConsistencyLoss, SPLoss)
from .pointdistiller_loss import PointDistillerLoss, bev_rows

__all__ = [
    'PointDistillerLoss', 'bev_rows', 'FitNetsLoss', 'ATLoss', 'SPLoss',
    'OFDLoss', 'CRDLoss', 'FKDLoss', 'SESSDConsistencyLoss', 'LogitKDLoss'
]
