# FitNets (Romero et al., ICLR 2015): MSE between the teacher's pillar
# features and the student's through a trainable 1x1 conv, on the pillar BEV
# map (middle encoder output: the pillar encoder features PointDistiller
# distills, scattered onto the 496 x 432 grid).
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
        fitnets=dict(
            student='pillar_map',
            teacher='pillar_map',
            rows=dict(type='FeaturePair'),
            loss=dict(
                type='FitNetsLoss',
                student_channels=32,
                teacher_channels=64,
                connector='auto',
                loss_weight=1.0))))
