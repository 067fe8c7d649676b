# Smaller3D, Table 2 last column "Quarter, alpha 1, T 1": the quarter student
# (W8) with the logit-KD recipe at alpha = 1 (the KD half vanishes).
_base_ = ['./minkunet34_w8_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']

alpha = 1.0
temperature = 1.0
teacher_config = 'projects/Smaller3D/configs/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py'  # noqa: E501
teacher_checkpoint = 'https://download.openmmlab.com/mmdetection3d/v1.1.0_models/minkunet/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_20230512_233817-72b200d8.pth'  # noqa: E501

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
