# SE-SSD-style consistency (Zheng et al., CVPR 2021): the student's class
# scores and box codes follow the teacher's on the anchors where the
# teacher's score reaches 0.3. The teacher runs its head
# (teacher_forward='tensor'; the teacher's model output is its head output).
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
        sessd=dict(
            student='head',
            teacher='head',
            rows=dict(type='AnchorHeadRows', box_code_size=7),
            loss=dict(
                type='SESSDConsistencyLoss',
                score_thr=0.3,
                outputs=('cls', 'bbox'),
                angle_index=6,
                beta=1.0 / 9.0,
                loss_weight=1.0))))
