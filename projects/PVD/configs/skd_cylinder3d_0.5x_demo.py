# Comparison (PVD supplementary Table 4, Cylinder3D): SKD, structured KD
# (Liu et al., CVPR 2019): pixel-wise term = per-voxel KL at T = 1
# (lambda_pi 0.15) and pair-wise term = cosine affinity of pooled feature
# nodes (lambda_pa 0.2). The holistic (adversarial) term has no coefficient
# in Table 4 and is not used.
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        _delete_=True,
        skd_pi=dict(student='logits', teacher='logits',
                    rows=dict(type='Cylinder3DRows'),
                    loss=dict(type='VoxelOutputKDLoss', temperature=1.0,
                              loss_weight=0.15)),
        skd_pa=dict(student='feats', teacher='feats',
                    rows=dict(type='Cylinder3DRows'),
                    loss=dict(type='PairwiseAffinityLoss',
                              node_size=(8, 8, 4), max_nodes=1024,
                              loss_weight=0.2))))
