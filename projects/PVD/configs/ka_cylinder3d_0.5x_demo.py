# Comparison (PVD supplementary Table 4, Cylinder3D): KA, knowledge
# adaptation (He et al., CVPR 2019): adaptation of the student's features to
# an auto-encoder's code of the teacher's (lambda_ada 0.2) and affinity
# distillation over pooled feature nodes (lambda_aff 0.15).
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        _delete_=True,
        ka_ada=dict(student='feats', teacher='feats',
                    rows=dict(type='Cylinder3DRows'),
                    loss=dict(type='KAAdaptationLoss', student_channels=64,
                              teacher_channels=128, code_channels=64,
                              recon_weight=1.0, loss_weight=0.2)),
        ka_aff=dict(student='feats', teacher='feats',
                    rows=dict(type='Cylinder3DRows'),
                    loss=dict(type='PairwiseAffinityLoss',
                              node_size=(8, 8, 4), max_nodes=1024,
                              loss_weight=0.15))))
