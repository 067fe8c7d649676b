# Logit KD (Hinton et al., 2015): KL between the softened per-anchor class
# scores of teacher and student (binary KL per class, the heads classify
# with sigmoids), times T^2. The teacher runs its head
# (teacher_forward='tensor').
# The 4x PointPillars student learns from mmdet3d's stock PointPillars on
# KITTI (3 classes); everything but the distillation recipe is
# configs/pointdistiller/pointpillars_4x.py.
_base_ = ['../pointdistiller/pointpillars_4x.py']

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
