# Similarity-preserving KD (Tung & Mori, ICCV 2019) on the demo data: the
# row-normalised batch similarity matrices of the pillar BEV maps (middle
# encoder output) of student and teacher. Everything but the distillation
# recipe is the PointDistiller demo config's.
_base_ = ['./pointpillars_4x_pointdistiller.py']

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
            # as 1 / b, so the weight is scaled to this config's batch of 2
            loss=dict(type='SPLoss', loss_weight=3000.0 * 2 / 128))))
