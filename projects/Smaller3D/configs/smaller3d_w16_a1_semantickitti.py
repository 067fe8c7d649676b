# Smaller3D, Table 2 column "Half, alpha 1, T 1": the half student (W16)
# distilled from the W32 teacher with Hinton KD on voxel logits,
#   L = alpha * L_task + (1 - alpha) * T^2 * KL(p_T^T || p_S^T),
# at alpha = 1, where the KD half vanishes (the paper's first student run).
# The teacher runs its head on the student's voxelized batch
# (teacher_forward='tensor'); logits are recorded at decode_head.conv_seg,
# one row per voxel, and paired by voxel coordinates.
_base_ = ['./minkunet34_w16_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']

alpha = 1.0
temperature = 1.0
teacher_config = 'projects/Smaller3D/configs/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py'  # noqa: E501
# mmdet3d's published checkpoint of the teacher config (69.3 mIoU)
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
