"""Adapters: the local-graph EdgeConv block and channel connectors."""
from .connectors import Conv1x1Connector, LinearConnector
from .local_graph import LocalGraphAdapter, edge_features, knn_indices

__all__ = [
    'LocalGraphAdapter', 'knn_indices', 'edge_features', 'LinearConnector',
    'Conv1x1Connector'
]
