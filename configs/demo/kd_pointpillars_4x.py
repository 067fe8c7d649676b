# Logit KD (Hinton et al., 2015) on the demo data: KL between the softened
# per-anchor class scores of teacher and student (binary KL per class, the
# heads classify with sigmoids), times T^2. The teacher runs its head
# (teacher_forward='tensor'). Everything but the distillation recipe is the
# PointDistiller demo config's.
_base_ = ['./pointpillars_4x_pointdistiller.py']

model = dict(
    teacher_forward='tensor',
    student_recorders=dict(_delete_=True, head=dict(source='bbox_head')),
    teacher_recorders=dict(_delete_=True, head=dict(source='')),
    distill_terms=dict(
        _delete_=True,
        kd=dict(
            student='head',
            teacher='head',
            rows=dict(type='AnchorHeadRows', box_code_size=7),
            loss=dict(
                type='LogitKDLoss',
                temperature=2.0,
                activation='sigmoid',
                loss_weight=1.0))))
