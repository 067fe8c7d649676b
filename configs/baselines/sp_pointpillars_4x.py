# Similarity-preserving KD (Tung & Mori, ICCV 2019): the row-normalised
# batch similarity matrices of the pillar BEV maps (middle encoder output)
# of student and teacher.
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
        sp=dict(
            student='pillar_map',
            teacher='pillar_map',
            rows=dict(type='FeaturePair'),
            # the paper's gamma = 3000 is for batches of 128; the loss scales
            # as 1 / b, so the weight is scaled to this config's batch of 6
            # per GPU
            loss=dict(type='SPLoss', loss_weight=3000.0 * 6 / 128))))
