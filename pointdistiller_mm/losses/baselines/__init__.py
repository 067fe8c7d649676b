"""Baseline KD losses of PointDistiller's Table 3, one call shape for all:
``loss(student_feats, teacher_feats, weight=None, data_samples=None)``."""
from .attention import ATLoss, attention_map
from .consistency import SESSDConsistencyLoss
from .crd import CRDLoss
from .fitnets import FitNetsLoss
from .fkd import FKDLoss, NonLocalBlock, spatial_channel_attention
from .logit_kd import LogitKDLoss
from .ofd import OFDLoss, bn_margin
from .similarity import SPLoss, similarity_matrix

__all__ = [
    'FitNetsLoss', 'ATLoss', 'SPLoss', 'OFDLoss', 'CRDLoss', 'FKDLoss',
    'SESSDConsistencyLoss', 'LogitKDLoss', 'NonLocalBlock', 'attention_map',
    'similarity_matrix', 'spatial_channel_attention', 'bn_margin'
]
