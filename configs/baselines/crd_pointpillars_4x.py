# Contrastive representation distillation (Tian et al., ICLR 2020):
# InfoNCE between embedded student and teacher pillar features (pillar BEV
# map, middle encoder output) of the same cell against the other drawn
# cells of the batch (in-batch negatives, no memory bank).
# The 4x PointPillars student learns from mmdet3d's stock PointPillars on
# KITTI (3 classes); everything but the distillation recipe is
# configs/pointdistiller/pointpillars_4x.py.
_base_ = ['../pointdistiller/pointpillars_4x.py']

model = dict(
    student_recorders=dict(
        _delete_=True, pillar_map=dict(source='middle_encoder')),
    teacher_recorders=dict(
        _delete_=True, pillar_map=dict(source='middle_encoder')),
    distill_terms=dict(
        _delete_=True,
        crd=dict(
            student='pillar_map',
            teacher='pillar_map',
            rows=dict(type='FeaturePair'),
            loss=dict(
                type='CRDLoss',
                student_channels=32,
                teacher_channels=64,
                embed_channels=128,
                temperature=0.07,
                num_samples=1024,
                negatives='batch',
                candidates='nonzero',
                symmetric=True,
                loss_weight=0.8))))
