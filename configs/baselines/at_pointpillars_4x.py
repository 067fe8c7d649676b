# Attention transfer (Zagoruyko & Komodakis, ICLR 2017): squared difference
# of the L2-normalised attention maps mean_c |F|^2 of the pillar BEV map
# (middle encoder output).
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
        at=dict(
            student='pillar_map',
            teacher='pillar_map',
            rows=dict(type='FeaturePair'),
            # the paper's beta / 2 = 500 multiplies a mean over the cells of
            # 32 x 32 attention maps; the mean here runs over 496 x 432
            # cells, so the weight is scaled by the ratio of the areas to
            # keep the strength per map
            loss=dict(
                type='ATLoss', p=2.0, loss_weight=500.0 * 496 * 432 /
                (32 * 32)))))
