# Attention-guided and non-local distillation (Zhang & Ma, ICLR 2021) on the
# demo data, on the pillar BEV map (middle encoder output): feature loss
# masked by the teacher's spatial and channel attention, attention transfer,
# and non-local relation distillation on the map average-pooled 4 x 4.
# Everything but the distillation recipe is the PointDistiller demo
# config's.
_base_ = ['./pointpillars_4x_pointdistiller.py']

model = dict(
    student_recorders=dict(
        _delete_=True, pillar_map=dict(source='middle_encoder')),
    teacher_recorders=dict(
        _delete_=True, pillar_map=dict(source='middle_encoder')),
    distill_terms=dict(
        _delete_=True,
        fkd=dict(
            student='pillar_map',
            teacher='pillar_map',
            rows=dict(type='FeaturePair'),
            loss=dict(
                type='FKDLoss',
                student_channels=32,
                teacher_channels=64,
                temperature=0.1,
                mask_student_ratio=0.0,
                # the official code's weights, times its factor 6
                feat_weight=7e-5 * 6,
                attention_weight=4e-3 * 6,
                nonlocal_weight=7e-5 * 6,
                nonlocal_pool=4,
                loss_weight=1.0))))
