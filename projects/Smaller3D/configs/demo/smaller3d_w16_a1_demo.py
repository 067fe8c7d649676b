# Smaller3D on the demo data, Table 2 column "Half, alpha 1, T 1": the W16
# student with logit KD at alpha = 1 (the KD half vanishes). Teacher: the
# demo W32 trained for 20 epochs (python tools/train.py
# projects/Smaller3D/configs/demo/minkunet34_w32_teacher_20e_demo.py
# --work-dir work_dirs/demo/minkunet_w32_teacher_20e); the student trains for
# the 10 epochs of minkunet34_w32_teacher_demo.py, like the W16 alone.
_base_ = ['./minkunet34_w16_student_demo.py']

alpha = 1.0
temperature = 1.0
teacher_config = 'projects/Smaller3D/configs/demo/minkunet34_w32_teacher_20e_demo.py'  # noqa: E501
teacher_checkpoint = 'work_dirs/demo/minkunet_w32_teacher_20e'  # newest .pth

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    teacher_forward='tensor',
    student_recorders=dict(logits=dict(source='decode_head.conv_seg')),
    teacher_recorders=dict(logits=dict(source='decode_head.conv_seg')),
    distill_terms=dict(
        kd=dict(
            student='logits',
            teacher='logits',
            rows=dict(type='VoxelLogitRows'),
            loss=dict(
                type='Smaller3DLogitKDLoss',
                alpha=alpha,
                temperature=temperature,
                form='paper',
                loss_weight=1.0))))
